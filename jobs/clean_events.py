"""seqlake clean: bronze/events -> silver/events (dedup, sessions, dwell, noise flags).

Rewrites the event dates of the look-back window ending at --date, so late
events that landed in a later folder reach their own event date's partition.
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

from jobs.runtime import (
    ConservationError,
    iso_date,
    job_parser,
    parse,
    print_summary,
    settings_from,
)
from pipelines.clickstream.clean import clean_window, noise_metrics, silver_events
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import BRONZE_EVENTS, SILVER_EVENTS, SILVER_NOISE_METRICS, table_uri
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions


def clean_date(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    started = time.perf_counter()
    _, first, last = clean_window(day, settings.clean)
    bronze = spark.read.format("delta").load(table_uri(settings.lakehouse, BRONZE_EVENTS))
    replace_date_partitions(silver_events(bronze, day, settings.clean), settings.lakehouse, SILVER_EVENTS, first, last)
    written = read_date_partitions(spark, settings.lakehouse, SILVER_EVENTS, first, last)
    replace_date_partitions(noise_metrics(written), settings.lakehouse, SILVER_NOISE_METRICS, first, last)

    in_window = bronze.where(
        F.col("landing_date").between(F.lit(first - dt.timedelta(days=1)), F.lit(last))
        & F.col("event_date").between(F.lit(first), F.lit(last))
    ).agg(F.count("*").alias("rows"), F.countDistinct("event_id").alias("events")).first()
    silver_rows = written.count()
    if silver_rows != in_window["events"]:
        raise ConservationError(
            f"{first}..{last}: silver has {silver_rows} rows for {in_window['events']} distinct bronze events"
        )
    metrics_of_day = read_date_partitions(spark, settings.lakehouse, SILVER_NOISE_METRICS, day).collect()
    by_reason = {
        (row["noise_reason"] or "genuine"): row["events"]
        for row in sorted(metrics_of_day, key=lambda r: r["noise_reason"] or "")
        if row["event_type"] == "click"
    }
    return {
        "date": day.isoformat(),
        "rewritten": f"{first}..{last}",
        "bronze_rows": in_window["rows"],
        "duplicates_dropped": in_window["rows"] - silver_rows,
        "silver_rows": silver_rows,
        "events_of_date": sum(row["events"] for row in metrics_of_day),
        "clicks_by_reason": by_reason,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Clean bronze/events into silver/events for a date and its look-back window.")
    parser.add_argument("--date", type=iso_date, required=True, help="event date YYYY-MM-DD")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-clean")
    try:
        figures = clean_date(spark, settings, args.date)
    except ConservationError as exc:
        sys.exit(f"seqlake clean: {exc}")
    print_summary("clean", figures, as_json=args.json)


if __name__ == "__main__":
    main()
