"""Hand-built bronze rows for specification tests."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

from pipelines.clickstream.schema import BRONZE_EVENTS_SCHEMA

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def at(seconds: float) -> int:
    """Epoch ms of T0 + seconds."""
    return int(T0.timestamp() * 1000 + seconds * 1000)


def bronze_frame(spark: SparkSession, rows: list[dict]) -> DataFrame:
    """Bronze rows with defaults: a click of user 1 on item 1 at T0, landed the same day."""
    full = []
    for i, row in enumerate(rows):
        ts = row.get("ts", at(0))
        event_ts = dt.datetime.fromtimestamp(ts / 1000, dt.UTC).replace(tzinfo=None)
        record = {
            "event_id": f"e{i}", "event_type": "click", "user_id": 1, "item_id": 1, "ts": ts,
            "category_id": 1, "impression_id": None, "position": 0, "dwell_ms": None,
            "content_length": None, "event_ts": event_ts, "event_date": event_ts.date(),
            "source_file": "f.jsonl", "ingest_ts": dt.datetime(2026, 11, 3),
            "landing_date": event_ts.date(),
        } | row
        full.append(tuple(record[f.name] for f in BRONZE_EVENTS_SCHEMA.fields))
    return spark.createDataFrame(full, BRONZE_EVENTS_SCHEMA)
