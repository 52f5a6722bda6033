"""seqlake's entities and feature views (features/definitions.py) for Feast.

Same views, features, keys, TTLs and validity delays as seqlake's own
store, over the same Delta tables under $SEQLAKE_LAKEHOUSE (read at `feast
apply`; the registry keeps the resolved paths). The event timestamp
`visible_from` is not a column of the tables: seqlake_offline_store derives it
from the run ledger (the instant the snapshot's night published it + 1 µs),
and the expiry from the snapshot's date + valid_after + ttl, so that Feast's
point-in-time rule gives exactly seqlake's (see that module).
"""

from __future__ import annotations

import datetime as dt
import os

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Array, Float32, Float64, Int32, Int64, String
from seqlake_offline_store import (
    JOIN_KEYS,
    ORDER_BY,
    PARTITION_COLUMN,
    TABLE,
    VALID_AFTER_S,
    VALID_AT,
)

DAY = dt.timedelta(days=1)
OWNER = "seqlake"
VISIBLE_FROM = "visible_from"

_lakehouse = os.environ.get("SEQLAKE_LAKEHOUSE")
if not _lakehouse:
    raise RuntimeError("set SEQLAKE_LAKEHOUSE to the lakehouse root (a folder or s3://bucket/prefix)")
if not os.environ.get("SEQLAKE_FEAST_DIR"):  # else Feast writes to a folder named "${SEQLAKE_FEAST_DIR}"
    raise RuntimeError("set SEQLAKE_FEAST_DIR to a folder for Feast's registry and online store")
# delta-rs names Hadoop's s3a:// s3://; a local folder is made absolute (the registry outlives the cwd).
LAKEHOUSE = _lakehouse.replace("s3a://", "s3://", 1) if "://" in _lakehouse else os.path.abspath(_lakehouse)

user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.INT64, description="a reader of the feed",
              owner=OWNER)
item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.INT64, description="an article or product",
              owner=OWNER)


def _source(table: str, partition: str, keys: list[str], valid_after: dt.timedelta, order_by: tuple[str, ...] = ()):
    tags = {TABLE: table, PARTITION_COLUMN: partition, VALID_AFTER_S: str(int(valid_after.total_seconds())),
            JOIN_KEYS: ",".join(keys)}
    if order_by:
        tags[ORDER_BY] = ",".join(order_by)
    return FileSource(
        name=table.replace("/", "_"), path=f"{LAKEHOUSE.rstrip('/')}/{table}", file_format=DeltaFormat(),
        # A range run publishes several dates at one instant: Feast breaks the tie by the
        # created timestamp, the snapshot's own instant, so that the newest date wins as in seqlake.
        timestamp_field=VISIBLE_FROM, created_timestamp_column=VALID_AT, owner=OWNER, tags=tags,
        description=f"Delta table {table}, one snapshot per {partition}, valid {valid_after} after it, as its night published it",
    )


def _view(name, entities, table, partition, features, ttl, description, valid_after=DAY, order_by=()):
    keys = [e.join_key for e in entities]
    return FeatureView(
        name=name, entities=entities, ttl=ttl, owner=OWNER, description=description,
        schema=[*(Field(name=k, dtype=Int64) for k in keys), *(Field(name=f, dtype=t) for f, t in features)],
        source=_source(table, partition, keys, valid_after, order_by), online=True,
        tags={TABLE: table, VALID_AFTER_S: str(int(valid_after.total_seconds()))},
    )


user_sequence = _view(
    "user_sequence", [user], "gold/user_sequences", "as_of_date",
    [("item_ids", Array(Int64)), ("category_ids", Array(Int32)), ("timestamps", Array(Int64)), ("length", Int32)],
    7 * DAY, "genuine behaviors, oldest first, capped at sequences.max_len",
)
# Several rows per user and snapshot (one per occupied bucket): each feature is
# the list of its values over the buckets, ordered by (version, hash_index, code).
user_bse = _view(
    "user_bse", [user], "gold/user_bse", "as_of_date",
    [("version", Array(String)), ("hash_index", Array(Int32)), ("code", Array(Int32)), ("count", Array(Int64)),
     ("vector_sum", Array(Array(Float32)))],
    7 * DAY, "occupied BSE buckets and their embedding sums", order_by=("version", "hash_index", "code"),
)
user_stats = _view(
    "user_stats", [user], "gold/user_stats", "as_of_date",
    [("user_impressions", Int64), ("user_clicks", Int64), ("user_ctr", Float64), ("user_dwell_mean_ms", Float64)],
    7 * DAY, "genuine engagement over examples.stats_days",
)
item_stats = _view(
    "item_stats", [item], "gold/item_stats", "as_of_date",
    [("item_impressions", Int64), ("item_clicks", Int64), ("item_actions", Int64), ("item_ctr", Float64),
     ("item_dwell_mean_ms", Float64), ("category_id", Int32)],
    7 * DAY, "genuine engagement over examples.stats_days",
)
ctr_scores = _view(
    "ctr_scores", [user, item], "scores/ctr", "score_date",
    [("score", Float64), ("model_version", String)],
    DAY, "offline CTR of the day's candidates", valid_after=dt.timedelta(0),
)
