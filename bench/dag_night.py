"""The fixed cost of a night: generated days through the real nightly DAG, one night after another.

Generates --days days (3 by default) with the generator's defaults - 2,000
users, about 95,000 events a day - in a fresh folder, then runs each day's
night through seqlake_nightly with dag.test() in this process, as `seqlake
demo` does (SQLite, embedded profile, every task its job's command in this
process, every quality gate run). The first night warms the process up (the
JVM, Delta's and Great Expectations' first use) and is not the goal's; the
second has too few labelled days before it to train and is the night the goal
is about (issue 19: under 60 s on 2 cores after warm-up); the third trains,
gates, exports its embeddings, scores the next day and reports. Prints each
night's seconds and its tasks' (Airflow's own durations).

    python bench/dag_night.py [--days 3] [--users 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.night import scratch_folder  # noqa: E402
from jobs.cli import invoke  # noqa: E402
from pipelines.config import load_settings  # noqa: E402
from pipelines.demo import airflow_dags, nightly_dag_test, use_repository_airflow  # noqa: E402
from pipelines.lakehouse.files import landing_dates  # noqa: E402

GOAL_SECONDS = 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3, help="days generated, one night each (at least 2)")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    if args.days < 2:
        parser.error("--days: at least 2 (the first night is the warm-up)")
    use_repository_airflow()
    work = Path(tempfile.mkdtemp(prefix="seqlake-bench-dag-night-", dir=scratch_folder()))
    roots = {name: str(work / name) for name in ("lakehouse", "landing", "truth", "reports")}
    base = load_settings()
    settings = base.model_copy(update={
        **roots, "generator": base.generator.model_copy(update={"days": args.days, "users": args.users}),
    })
    try:
        generated = invoke("generate", [], settings)
        nights = landing_dates(settings.landing)
        events_per_day = round(generated["events"] / len(nights))
        print(f"== {generated['events']:,} events over {len(nights)} days ({events_per_day:,} a day, "
              f"{args.users:,} users) in {work}", flush=True)
        dags = airflow_dags(settings, {})
        figures: dict[str, object] = {"events_per_day": events_per_day}
        for index, night in enumerate(nights):
            began = time.perf_counter()
            tasks = nightly_dag_test(dags, night)
            seconds = round(time.perf_counter() - began, 1)
            wanted = ("warm_up_night" if index == 0 else
                      "night_with_training" if tasks["train_model"].state == "success" else "night")
            label = wanted if f"{wanted}_seconds" not in figures else f"night_{index + 1}"
            figures[f"{label}_seconds"] = seconds
            figures[f"{label}_tasks"] = {t: round(task.seconds, 1) for t, task in tasks.items() if task.seconds is not None}
            print(f"   {label}: {seconds} s; " + ", ".join(
                f"{t} {task.seconds:.1f}" for t, task in tasks.items() if task.seconds is not None), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if "night_seconds" in figures:
        figures["night_under_goal"] = figures["night_seconds"] < GOAL_SECONDS
        print(f"the night after warm-up: {figures['night_seconds']} s (goal < {GOAL_SECONDS} s)", flush=True)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
