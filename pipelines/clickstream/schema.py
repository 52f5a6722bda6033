"""The landing record as ingest reads it, event types and reject reasons, and the
bronze tables' Spark schemas (from the catalog, pipelines.lakehouse.tables)."""

from __future__ import annotations

import dataclasses
import enum

from pyspark.sql import types as T

from pipelines.lakehouse.spark_schema import spark_schema, spark_type
from pipelines.lakehouse.tables import BRONZE_EVENTS, BRONZE_EVENTS_REJECTED, LANDING_RECORD


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    spark_type: T.DataType
    required: bool


# The upstream that writes the nightly landing folders; imports of public
# datasets are sources of their own (named after the dataset by default).
LANDING_SOURCE = "landing"

# The landing record's fields, as ingest parses them (the contract itself is
# pipelines.lakehouse.tables.LANDING_RECORD).
LANDING_FIELDS: tuple[Field, ...] = tuple(Field(f.name, spark_type(f.type), required=not f.nullable) for f in LANDING_RECORD)
REQUIRED_FIELDS = tuple(f.name for f in LANDING_FIELDS if f.required)


class EventType(enum.StrEnum):
    IMPRESSION = "impression"
    CLICK = "click"
    # E-commerce actions, from adapters of public formats.
    CART = "cart"
    FAV = "fav"
    BUY = "buy"


class RejectReason(enum.StrEnum):
    # A whole landing file Spark could not read (one record names it and why).
    UNREADABLE_FILE = "unreadable_file"
    EMPTY_RECORD = "empty_record"
    INVALID_ENCODING = "invalid_encoding"
    # Longer than ingest.max_record_bytes.
    OVERSIZED_RECORD = "oversized_record"
    # Not parseable: broken JSON, or a source row an adapter could not map.
    MALFORMED_RECORD = "malformed_record"
    # A key written twice in one object.
    DUPLICATE_KEY = "duplicate_key"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    # An ISO-8601 time without a zone: which instant it means is a guess.
    AMBIGUOUS_TIMESTAMP = "ambiguous_timestamp"
    # An epoch time in seconds, microseconds or nanoseconds where the contract says milliseconds.
    WRONG_TIME_UNIT = "wrong_time_unit"
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    NEGATIVE_DWELL = "negative_dwell"
    # A scroll depth outside 0-100 percent (or NaN): not a share of a page.
    SCROLL_OUT_OF_RANGE = "scroll_out_of_range"
    FUTURE_TIMESTAMP = "future_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    # One event id landed in the batch with different contents: which is true is a guess.
    CONFLICTING_EVENT_ID = "conflicting_event_id"
    # A record of a user that `seqlake forget` removed: counted, nothing of it kept.
    FORGOTTEN_USER = "forgotten_user"


BRONZE_EVENTS_SCHEMA = spark_schema(BRONZE_EVENTS.schema)
BRONZE_REJECTED_SCHEMA = spark_schema(BRONZE_EVENTS_REJECTED.schema)
