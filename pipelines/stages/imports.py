"""Import: a public dataset's files -> bronze, through the same rules as ingest.

Each record lands on the date of its own event time (a backfill). The import
is a source of its own (default the format's name): rerunning it replaces
what it wrote before and nothing else, and it refuses to write into landing
dates that hold rows of another source.
"""

from __future__ import annotations

import importlib
import re
import time

from pyspark.sql import SparkSession

from pipelines.clickstream.publish import (
    PublishScope,
    import_landing_dates,
    publish_landing_records,
)
from pipelines.clickstream.schema import LANDING_SOURCE
from pipelines.config import Settings
from pipelines.lakehouse.ledger import now_utc

FORMATS = ("ebnerd", "taobao", "kuairand", "mind")


def import_source(
    spark: SparkSession, settings: Settings, source_format: str, path: str, source: str | None = None
) -> dict[str, object]:
    started = time.perf_counter()
    source = checked_source_name(source or source_format)
    adapter = importlib.import_module(f"pipelines.sources.{source_format}")
    records = import_landing_dates(adapter.landing_records(spark, path), now_utc(), settings.ingest)
    counts = publish_landing_records(
        spark, settings.lakehouse, records, PublishScope(source), settings.ingest, job=f"import {source_format}",
        history_days=settings.quality.history_days,
    )
    figures: dict[str, object] = {"format": source_format, "records": counts.pop("landed"), **counts}
    if hasattr(adapter, "history_entries_left_out"):
        figures["history_entries_left_out"] = adapter.history_entries_left_out(spark, path)
    figures["seconds"] = round(time.perf_counter() - started, 2)
    return figures


def checked_source_name(name: str) -> str:
    """`name` when an import may carry it: it is stored in every row and names
    (in SQL) the rows the import replaces, so a short lowercase word, and not
    the nightly landing's own."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", name):
        raise ValueError(f"source name {name!r}: lowercase letters, digits, '_' and '-' (at most 64)")
    if name == LANDING_SOURCE:
        raise ValueError(f"source name {LANDING_SOURCE!r} is the nightly landing's; name the import otherwise")
    return name
