"""seqlake ingest: one landing date's files -> bronze/events + bronze/events_rejected.

Runnable as `seqlake ingest --date D`, `python -m jobs.ingest_events --date D`
and `spark-submit jobs/ingest_events.py --date D`; `--start D1 --end D2`
ingests each landing date of the range in turn, one commit each (a backfill).
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from pyspark.sql import SparkSession

from jobs.cli import add_night_arguments, nights, run_command, settings_flag
from pipelines.clickstream.landing import landing_records
from pipelines.clickstream.publish import PublishScope, publish_landing_records
from pipelines.clickstream.schema import LANDING_SOURCE
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)
    settings_flag(parser, "--landing", "landing", metavar="URI", help="landing root (default: configured)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    first, last = nights(args)
    spark = spark_session(settings.spark, "seqlake-ingest")
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    if len(days) == 1:
        return ingest_date(spark, settings, first)
    runs = [ingest_date(spark, settings, day) for day in days]
    totals = {k: sum(r[k] for r in runs) for k in ("landed", "bronze", "rejected")}
    return {"dates": f"{first}..{last}", **totals, "adds_up": totals["landed"] == totals["bronze"] + totals["rejected"],
            "seconds": round(sum(r["seconds"] for r in runs), 2)}


def ingest_date(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    """Ingest the landing folder of `day` into its bronze partitions, checked and recorded."""
    started = time.perf_counter()
    figures = publish_landing_records(
        spark, settings.lakehouse, landing_records(spark, settings.landing, day),
        PublishScope(LANDING_SOURCE, day), settings.ingest, job="ingest", history_days=settings.quality.history_days,
    )
    return {"date": day.isoformat(), **figures, "adds_up": True, "seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__":
    run_command("ingest")
