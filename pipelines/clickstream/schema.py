"""The landing record contract shared by upstream writers (the generator, the
adapters) and ingest, and the bronze table schemas derived from it."""

from __future__ import annotations

import dataclasses
import enum

from pyspark.sql import types as T


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    spark_type: T.DataType
    required: bool


# The upstream that writes the nightly landing folders; imports of public
# datasets are sources of their own (named after the dataset by default).
LANDING_SOURCE = "landing"

# One landing record is one JSON object per line. `ts` is event time in epoch
# milliseconds (UTC); `dwell_ms` is the upstream's dwell where it measures one.
LANDING_FIELDS: tuple[Field, ...] = (
    Field("event_id", T.StringType(), required=True),
    Field("event_type", T.StringType(), required=True),
    Field("user_id", T.LongType(), required=True),
    Field("item_id", T.LongType(), required=True),
    Field("ts", T.LongType(), required=True),
    Field("category_id", T.IntegerType(), required=False),
    Field("impression_id", T.StringType(), required=False),
    Field("position", T.IntegerType(), required=False),
    Field("dwell_ms", T.LongType(), required=False),
    Field("content_length", T.IntegerType(), required=False),
)
REQUIRED_FIELDS = tuple(f.name for f in LANDING_FIELDS if f.required)


class EventType(enum.StrEnum):
    IMPRESSION = "impression"
    CLICK = "click"
    # E-commerce actions, from adapters of public formats.
    CART = "cart"
    FAV = "fav"
    BUY = "buy"


class RejectReason(enum.StrEnum):
    EMPTY_RECORD = "empty_record"
    # Not parseable: broken JSON, or a source row an adapter could not map.
    MALFORMED_RECORD = "malformed_record"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    NEGATIVE_DWELL = "negative_dwell"
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"


BRONZE_EVENTS_SCHEMA = T.StructType(
    [T.StructField(f.name, f.spark_type, nullable=not f.required) for f in LANDING_FIELDS]
    + [
        T.StructField("event_ts", T.TimestampType(), nullable=False),
        T.StructField("event_date", T.DateType(), nullable=False),
        T.StructField("source", T.StringType(), nullable=False),
        T.StructField("source_file", T.StringType(), nullable=False),
        T.StructField("ingest_ts", T.TimestampType(), nullable=False),
        T.StructField("landing_date", T.DateType(), nullable=False),
    ]
)

BRONZE_REJECTED_SCHEMA = T.StructType(
    [
        T.StructField("raw", T.StringType()),
        T.StructField("reason", T.StringType(), nullable=False),
        T.StructField("reason_detail", T.StringType()),
        T.StructField("source", T.StringType(), nullable=False),
        T.StructField("source_file", T.StringType(), nullable=False),
        T.StructField("ingest_ts", T.TimestampType(), nullable=False),
        T.StructField("landing_date", T.DateType(), nullable=False),
    ]
)
