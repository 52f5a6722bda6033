"""Ingest: a landing date's files -> bronze/events + bronze/events_rejected, each record checked.

A range ingests each landing date in turn, one commit each (a backfill).
"""

from __future__ import annotations

import datetime as dt
import time

from py4j.protocol import Py4JJavaError
from pyspark.sql import SparkSession

from pipelines.clickstream.landing import landing_records, unreadable_reason
from pipelines.clickstream.publish import PublishScope, publish_landing_records
from pipelines.clickstream.schema import LANDING_SOURCE
from pipelines.config import Settings
from pipelines.errors import MissingInputError
from pipelines.lakehouse.dates import days_between


def ingest_date(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    """Ingest the landing folder of `day` into its bronze partitions, checked and
    recorded. A file Spark cannot read fails the publish's first pass over the
    lines, before it writes anything: the folder is then read again with that
    file quarantined whole (one rejected record naming it and why)."""
    started = time.perf_counter()
    unreadable: dict[str, str] = {}
    while True:
        read = landing_records(spark, settings.landing, day, unreadable)
        try:
            figures = publish_landing_records(
                spark, settings.lakehouse, read.records, PublishScope(LANDING_SOURCE, day), settings.ingest,
                job="ingest", history_days=settings.quality.history_days, files=read.figures(),
            )
            break
        except Py4JJavaError as failure:
            failed = read.failed_file(failure)
            if failed is None:
                raise
            unreadable[failed] = unreadable_reason(failure)
    if not figures["landed"]:
        # A night without one event is an upstream that has not delivered yet, not a quiet day.
        raise MissingInputError(
            f"the landing folder of {day} holds no records: {figures['files_read']} files read, all empty; "
            f"{len(figures['files_skipped'])} skipped as hidden")
    return {"date": day.isoformat(), **figures, "adds_up": True, "seconds": round(time.perf_counter() - started, 2)}


def ingest_dates(spark: SparkSession, settings: Settings, first: dt.date, last: dt.date) -> dict[str, object]:
    """Each landing date of first..last in turn; one date's figures, or the range's totals."""
    if first == last:
        return ingest_date(spark, settings, first)
    runs = [ingest_date(spark, settings, day) for day in days_between(first, last)]
    totals = {k: sum(r[k] for r in runs) for k in ("landed", "bronze", "rejected")}
    return {"dates": f"{first}..{last}", **totals, "adds_up": totals["landed"] == totals["bronze"] + totals["rejected"],
            "seconds": round(sum(r["seconds"] for r in runs), 2)}
