"""seqlake clean: bronze/events -> silver/events (dedup, sessions, dwell, noise flags).

    seqlake clean --date D                  one night: rewrites D - lookback .. D
    seqlake clean --start D1 --end D2       a backfill in one pass: D1 - lookback .. D2

Both write the same partitions the nightly runs of those dates would.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.runtime import add_date_range_arguments, date_range, job_parser, parse, print_summary, run_job, settings_from
from pipelines.clickstream.clean import CleanWindow, noise_metrics, prepared_events, silver_events
from pipelines.clickstream.publish import require_finished_ingests
from pipelines.config import Settings
from pipelines.errors import ConservationError
from pipelines.lakehouse.dates import days_between
from pipelines.lakehouse.ledger import Run, now_utc, record_run
from pipelines.lakehouse.session import persisted, spark_session
from pipelines.lakehouse.tables import BRONZE_EVENTS, SILVER_EVENTS, SILVER_NOISE_METRICS
from pipelines.lakehouse.writes import read_date_partitions, read_table, replace_date_partitions


def clean_dates(spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None) -> dict[str, object]:
    """Clean the event dates that the nightly runs of start..end rewrite, in one pass."""
    started, began = time.perf_counter(), now_utc()
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.clean
    window = CleanWindow.of(start, end, rules)
    require_finished_ingests(spark, lakehouse, window.bronze_rows(settings.ingest))
    bronze = read_table(spark, lakehouse, BRONZE_EVENTS)
    with persisted(prepared_events(bronze, window, rules, settings.ingest)) as events:
        replace_date_partitions(silver_events(events, window, rules), lakehouse, SILVER_EVENTS, window.first, window.last)
    written = read_date_partitions(spark, lakehouse, SILVER_EVENTS, window.first, window.last)
    replace_date_partitions(noise_metrics(written), lakehouse, SILVER_NOISE_METRICS, window.first, window.last)

    in_window = bronze.where(window.bronze_rows(settings.ingest) & window.rewritten_rows()).agg(
        F.count("*").alias("rows"), F.countDistinct("event_id").alias("events")
    ).first()
    silver_rows = written.count()
    if silver_rows != in_window["events"]:
        raise ConservationError(
            f"{window.first}..{window.last}: silver has {silver_rows} rows for {in_window['events']} distinct bronze events"
        )
    metrics_of_end = read_date_partitions(spark, lakehouse, SILVER_NOISE_METRICS, end).collect()
    figures = {
        "date": end.isoformat() if start == end else f"{start}..{end}",
        "rewritten": f"{window.first}..{window.last}",
        "bronze_rows": in_window["rows"],
        "duplicates_dropped": in_window["rows"] - silver_rows,
        "silver_rows": silver_rows,
        "events_of_date": sum(row["events"] for row in metrics_of_end),
        "clicks_by_reason": {
            (row["noise_reason"] or "genuine"): row["events"]
            for row in sorted(metrics_of_end, key=lambda r: r["noise_reason"] or "")
            if row["event_type"] == "click"
        },
    }
    record_run(lakehouse, Run("clean", days_between(window.first, window.last), began, tables=(SILVER_EVENTS, SILVER_NOISE_METRICS)), figures)
    return {**figures, "seconds": round(time.perf_counter() - started, 2)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Clean bronze/events into silver/events for a night (--date) or a range of nights.")
    add_date_range_arguments(parser)
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    start, end = date_range(parser, args)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-clean")
    print_summary("clean", run_job("clean", lambda: clean_dates(spark, settings, start, end)), as_json=args.json)


if __name__ == "__main__":
    main()
