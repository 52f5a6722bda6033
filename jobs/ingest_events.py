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

from pyspark.sql import SparkSession

from jobs.runtime import iso_date, job_parser, parse, print_summary, run_job, settings_from
from pipelines.clickstream.landing import landing_records
from pipelines.clickstream.publish import PublishScope, publish_landing_records
from pipelines.clickstream.schema import LANDING_SOURCE
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session


def ingest_date(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    """Ingest the landing folder of `day`, replace its bronze partitions, check conservation."""
    started = time.perf_counter()
    figures = publish_landing_records(
        spark, settings.lakehouse, landing_records(spark, settings.landing, day),
        PublishScope(LANDING_SOURCE, day), settings.ingest, job="ingest",
    )
    return {"date": day.isoformat(), **figures, "adds_up": True, "seconds": round(time.perf_counter() - started, 2)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Ingest one landing date into bronze/events and bronze/events_rejected.")
    parser.add_argument("--date", type=iso_date, required=True, help="landing date YYYY-MM-DD")
    parser.add_argument("--landing", help="landing root URI (default: configured landing)")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    settings = settings_from(args, landing=args.landing, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-ingest")
    print_summary("ingest", run_job("ingest", lambda: ingest_date(spark, settings, args.date)), as_json=args.json)


if __name__ == "__main__":
    main()
