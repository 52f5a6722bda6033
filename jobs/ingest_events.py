"""seqlake ingest: one landing date's files -> bronze/events + bronze/events_rejected.

Runnable as `seqlake ingest --date D`, `python -m jobs.ingest_events --date D`
and `spark-submit jobs/ingest_events.py --date D`.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from jobs.runtime import (
    ConservationError,
    iso_date,
    job_parser,
    parse,
    print_summary,
    settings_from,
)
from pipelines.clickstream.ingest import bronze_events, classified_landing_records, rejected_events
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import BRONZE_EVENTS, BRONZE_EVENTS_REJECTED
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions


def landing_folder(landing: str, day: dt.date) -> str:
    return f"{landing.rstrip('/')}/events/date={day.isoformat()}"


def ingest_date(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    """Ingest the landing folder of `day`, replace its bronze partitions, check conservation."""
    started = time.perf_counter()
    folder = landing_folder(settings.landing, day)
    try:
        raw = spark.read.text(folder).select(
            F.col("value").alias("raw"),
            F.col("_metadata.file_path").alias("source_file"),
            F.lit(day).alias("landing_date"),
        )
    except Exception as exc:  # Spark raises AnalysisException for a missing path
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            raise FileNotFoundError(f"no landing files for {day} at {folder}") from exc
        raise
    figures = published_landing_records(spark, settings, raw)
    return {
        "date": day.isoformat(),
        **figures,
        "adds_up": True,
        "seconds": round(time.perf_counter() - started, 2),
    }


def published_landing_records(spark: SparkSession, settings: Settings, records: DataFrame) -> dict[str, object]:
    """Classify landing records (`raw`, `source_file`, `landing_date`), replace the
    bronze partitions of their landing dates, and check landed = bronze + rejected
    on what the tables hold afterwards. Returns the counts."""
    ingest_ts = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    # Classified once and kept: both tables and the landed count read the same rows.
    classified = classified_landing_records(records, ingest_ts, settings.ingest).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        landed, first, last = classified.agg(
            F.count("*"), F.min("landing_date"), F.max("landing_date")
        ).first()
        if landed:
            replace_date_partitions(bronze_events(classified), settings.lakehouse, BRONZE_EVENTS, first, last)
            replace_date_partitions(rejected_events(classified), settings.lakehouse, BRONZE_EVENTS_REJECTED, first, last)
    finally:
        classified.unpersist()
    if not landed:
        return {"landed": 0, "bronze": 0, "rejected": 0, "rejected_by_reason": {}}

    # The write replaced every partition from first to last: what they hold now is this run's.
    def this_run(table):
        return read_date_partitions(spark, settings.lakehouse, table, first, last)

    bronze_rows = this_run(BRONZE_EVENTS).count()
    rejected_by_reason = {
        row["reason"]: row["count"]
        for row in this_run(BRONZE_EVENTS_REJECTED).groupBy("reason").count().orderBy("reason").collect()
    }
    rejected = sum(rejected_by_reason.values())
    if landed != bronze_rows + rejected:
        raise ConservationError(f"{first}..{last}: landed {landed} != bronze {bronze_rows} + rejected {rejected}")
    return {"landed": landed, "bronze": bronze_rows, "rejected": rejected, "rejected_by_reason": rejected_by_reason}


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Ingest one landing date into bronze/events and bronze/events_rejected.")
    parser.add_argument("--date", type=iso_date, required=True, help="landing date YYYY-MM-DD")
    parser.add_argument("--landing", help="landing root URI (default: configured landing)")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    settings = settings_from(args, landing=args.landing, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-ingest")
    try:
        figures = ingest_date(spark, settings, args.date)
    except (FileNotFoundError, ConservationError) as exc:
        sys.exit(f"seqlake ingest: {exc}")
    print_summary("ingest", figures, as_json=args.json)


if __name__ == "__main__":
    main()
