"""seqlake clean: bronze/events -> silver/events (dedup, sessions, dwell, noise flags).

    seqlake clean --date D                  one night: rewrites D - lookback .. D
    seqlake clean --start D1 --end D2       a backfill in one pass: D1 - lookback .. D2

Both write the same partitions the nightly runs of those dates would.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from pyspark.sql import SparkSession

from jobs.cli import add_night_arguments, nights, run_command
from pipelines.clickstream.clean import (
    CleanWindow,
    clean_summary,
    noise_metrics,
    prepared_events,
    silver_events,
)
from pipelines.clickstream.publish import require_finished_ingests
from pipelines.config import Settings
from pipelines.lakehouse.continuity import require_unbroken_past
from pipelines.lakehouse.dates import days_between
from pipelines.lakehouse.ledger import Run, now_utc, record_run, unfinished_runs
from pipelines.lakehouse.session import persisted, spark_session
from pipelines.lakehouse.tables import BRONZE_EVENTS, SILVER_EVENTS, SILVER_NOISE_METRICS
from pipelines.lakehouse.writes import read_date_partitions, read_table, replace_date_partitions
from pipelines.quality.gate import audit_and_publish_dates, published_rates, published_volumes
from pipelines.quality.suites import NOISE_RATE, silver_events_suite


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return clean_dates(spark_session(settings.spark, "seqlake-clean"), settings, *nights(args))


def clean_dates(spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None) -> dict[str, object]:
    """Clean the event dates that the nightly runs of start..end rewrite, in one pass."""
    started, began = time.perf_counter(), now_utc()
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.clean
    window = CleanWindow.of(start, end, rules)
    require_unbroken_past(lakehouse, "clean", (start, end), window.first, inputs=("ingest",))
    require_finished_ingests(spark, lakehouse, window.bronze_rows(settings.ingest))
    run = Run("clean", days_between(window.first, window.last), began, tables=(SILVER_EVENTS, SILVER_NOISE_METRICS),
              nights=days_between(start, end))
    healed = unfinished_runs(lakehouse, "clean", run.tables)
    bronze = read_table(spark, lakehouse, BRONZE_EVENTS)
    with persisted(prepared_events(bronze, window, rules, settings.ingest)) as events:
        history = settings.quality.history_days
        noise = published_rates(spark, lakehouse, SILVER_EVENTS, NOISE_RATE, window.first, history)
        volumes = published_volumes(spark, lakehouse, SILVER_EVENTS, window.first, history)
        audit_and_publish_dates(spark, silver_events(events, window, rules), lakehouse, SILVER_EVENTS, window.first, window.last,
                                silver_events_suite(noise, newest=end, volume_history=volumes), userMetadata=run.commit_tag)
    written = read_date_partitions(spark, lakehouse, SILVER_EVENTS, window.first, window.last)
    replace_date_partitions(noise_metrics(written), lakehouse, SILVER_NOISE_METRICS, window.first, window.last,
                            userMetadata=run.commit_tag)
    figures = clean_summary(
        bronze.where(window.bronze_rows(settings.ingest) & window.rewritten_rows()),
        written,
        read_date_partitions(spark, lakehouse, SILVER_NOISE_METRICS, end),
    )
    figures = {"date": end.isoformat() if start == end else f"{start}..{end}", "rewritten": f"{window.first}..{window.last}",
               **figures, "healed": healed}
    record_run(lakehouse, run, figures)
    return {**figures, "seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__":
    run_command("clean")
