"""seqlake ingest: one landing date's files -> bronze/events + bronze/events_rejected.

Runnable as `seqlake ingest --date D`, `python -m jobs.ingest_events --date D`
and `spark-submit jobs/ingest_events.py --date D`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from pyspark.sql import SparkSession

from jobs.cli import iso_date, run_command, settings_flag
from pipelines.clickstream.landing import landing_records
from pipelines.clickstream.publish import PublishScope, publish_landing_records
from pipelines.clickstream.schema import LANDING_SOURCE
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=iso_date, required=True, help="landing date YYYY-MM-DD")
    settings_flag(parser, "--landing", "landing", metavar="URI", help="landing root (default: configured)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return ingest_date(spark_session(settings.spark, "seqlake-ingest"), settings, args.date)


def ingest_date(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    """Ingest the landing folder of `day` into its bronze partitions, checked and recorded."""
    started = time.perf_counter()
    figures = publish_landing_records(
        spark, settings.lakehouse, landing_records(spark, settings.landing, day),
        PublishScope(LANDING_SOURCE, day), settings.ingest, job="ingest",
    )
    return {"date": day.isoformat(), **figures, "adds_up": True, "seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__":
    run_command("ingest")
