"""seqlake import: a public dataset's files -> bronze, through the same rules as ingest.

    seqlake import --format {ebnerd,taobao,kuairand,mind} --input PATH [--lakehouse URI]

Each record lands on the date of its own event time (a backfill); records
without a usable time land on --date (default today) and are rejected there
with their reason. Rerunning an import replaces the dates it spans, so import
a dataset into a lakehouse of its own (--lakehouse).
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.ingest_events import published_landing_records
from jobs.runtime import (
    ConservationError,
    iso_date,
    job_parser,
    parse,
    print_summary,
    settings_from,
)
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session

FORMATS = ("ebnerd", "taobao", "kuairand", "mind")


def landing_dated(records: DataFrame, fallback: dt.date) -> DataFrame:
    """Records with the landing date of their own event time, or `fallback` without one."""
    ts_ms = F.get_json_object("raw", "$.ts").try_cast("long")
    event_date = F.to_date(F.timestamp_millis(ts_ms))
    return records.withColumn("landing_date", F.coalesce(event_date, F.lit(fallback)))


def import_source(
    spark: SparkSession, settings: Settings, source_format: str, path: str, fallback: dt.date
) -> dict[str, object]:
    started = time.perf_counter()
    adapter = importlib.import_module(f"pipelines.sources.{source_format}")
    records = landing_dated(adapter.landing_records(spark, path), fallback)
    counts = published_landing_records(spark, settings, records)
    figures: dict[str, object] = {
        "format": source_format,
        "records": counts.pop("landed"),
        **counts,
    }
    if hasattr(adapter, "history_entries_left_out"):
        figures["history_entries_left_out"] = adapter.history_entries_left_out(spark, path)
    figures["seconds"] = round(time.perf_counter() - started, 2)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Import a public clickstream dataset into bronze.")
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--input", required=True, help="the dataset's file or folder")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--date", type=iso_date, default=dt.date.today(),
                        help="landing date for records without a usable time (default today)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, f"seqlake-import-{args.format}")
    try:
        figures = import_source(spark, settings, args.format, args.input, args.date)
    except ConservationError as exc:
        sys.exit(f"seqlake import: {exc}")
    print_summary("import", figures, as_json=args.json)


if __name__ == "__main__":
    main()
