"""seqlake demo: generate a few days under var/demo, run them through the real
DAGs (a backfill of the days before the last, then the last day's night), then
print what they published (pipelines.demo)."""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time

from jobs.cli import invoke, run_command
from pipelines.config import Settings, home
from pipelines.demo import (
    demo_settings,
    print_demo_summary,
    run_days_through_airflow,
    use_repository_airflow,
)
from pipelines.lakehouse.files import landing_dates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="var/demo", help="demo output folder, relative to SEQLAKE_HOME or the repository (default var/demo)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    root = (home() / args.root).resolve()
    settings = demo_settings(settings, root, dt.datetime.now(dt.UTC).date())
    started = time.perf_counter()
    # The demo owns its folder: start from nothing so reruns print the same figures.
    shutil.rmtree(root, ignore_errors=True)

    g = settings.generator
    print(f"== generate: {g.users} users ({g.heavy_user_share:.0%} heavy, x{g.heavy_user_activity:g} the visits), "
          f"{g.days} days from {g.start_date}, seed {g.seed}, noise x{g.noise_scale}; long side {settings.examples.train_len} behaviors")
    generated = invoke("generate", [], settings)
    print(f"   {generated['events']:,} events in {generated['lines']:,} landing lines -> {settings.landing}")

    nights = landing_dates(settings.landing)
    airflow_home = use_repository_airflow()
    print(f"== the days through Airflow: dag.test() of seqlake_backfill over the days before the last, then of "
          f"seqlake_nightly for the last night (SQLite, embedded profile, AIRFLOW_HOME {airflow_home})")
    runs = run_days_through_airflow(settings, nights)
    figures = print_demo_summary(settings, nights, runs)
    report = figures.pop("report")
    return {**figures, "nights": len(nights), "report": report, "seconds": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    run_command("demo")
