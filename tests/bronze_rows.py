"""Hand-built bronze rows for specification tests."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

from pipelines.clickstream.publish import INGEST_STAGE
from pipelines.clickstream.schema import BRONZE_EVENTS_SCHEMA, LANDING_SOURCE
from pipelines.config import Settings
from pipelines.lakehouse.ledger import Run, record_run
from pipelines.lakehouse.tables import BRONZE_EVENTS
from pipelines.lakehouse.writes import replace_date_partitions

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
INGEST_TS = dt.datetime(2026, 11, 3)  # naive UTC, as the ledger records it


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
            "content_length": None, "scroll_pct": None, "event_ts": event_ts, "event_date": event_ts.date(),
            "source": LANDING_SOURCE, "source_file": "f.jsonl", "ingest_ts": INGEST_TS.replace(tzinfo=dt.UTC),
            "landing_date": event_ts.date(),
        } | row
        full.append(tuple(record[f.name] for f in BRONZE_EVENTS_SCHEMA.fields))
    return spark.createDataFrame(full, BRONZE_EVENTS_SCHEMA)


def write_bronze(spark: SparkSession, settings: Settings, rows: list[dict], landing_date: dt.date) -> None:
    """Replace bronze's `landing_date` with `rows` (all landed that day) as a
    finished ingest would: the rows, then the run's ledger row."""
    rows = [{"landing_date": landing_date, **row} for row in rows]
    replace_date_partitions(bronze_frame(spark, rows), settings.lakehouse, BRONZE_EVENTS, landing_date)
    run = Run(INGEST_STAGE, [landing_date], INGEST_TS, source=LANDING_SOURCE, written_ts=INGEST_TS, tables=(BRONZE_EVENTS,))
    record_run(settings.lakehouse, run, {"job": "test"})
