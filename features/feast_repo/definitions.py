"""seqlake's entities and feature views (features/definitions.py) for Feast.

Same views, features, keys, TTLs and publication delays as seqlake's own
store, over the same Delta tables under $SEQLAKE_LAKEHOUSE (read at `feast
apply`; the registry keeps the resolved paths). The event timestamp
`visible_from` is not a column of the tables: seqlake_offline_store derives it
from the snapshot's date partition (date + published_after + 1 µs), so that
Feast's point-in-time rule gives exactly seqlake's (see that module).
"""

from __future__ import annotations

import datetime as dt
import os

from feast import Entity, FeatureView, Field, FileSource, ValueType
from feast.data_format import DeltaFormat
from feast.types import Array, Float32, Float64, Int32, Int64, String
from seqlake_offline_store import JOIN_KEYS, ORDER_BY, PARTITION_COLUMN, PUBLISHED_AFTER_S

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


def _source(table: str, partition: str, keys: list[str], published_after: dt.timedelta, order_by: tuple[str, ...] = ()):
    tags = {PARTITION_COLUMN: partition, PUBLISHED_AFTER_S: str(int(published_after.total_seconds())),
            JOIN_KEYS: ",".join(keys)}
    if order_by:
        tags[ORDER_BY] = ",".join(order_by)
    return FileSource(
        name=table.replace("/", "_"), path=f"{LAKEHOUSE.rstrip('/')}/{table}", file_format=DeltaFormat(),
        timestamp_field=VISIBLE_FROM, owner=OWNER, tags=tags,
        description=f"Delta table {table}, one snapshot per {partition}, published {published_after} after it",
    )


def _view(name, entities, table, partition, features, ttl, description, published_after=DAY, order_by=()):
    keys = [e.join_key for e in entities]
    return FeatureView(
        name=name, entities=entities, ttl=ttl, owner=OWNER, description=description,
        schema=[*(Field(name=k, dtype=Int64) for k in keys), *(Field(name=f, dtype=t) for f, t in features)],
        source=_source(table, partition, keys, published_after, order_by), online=True,
        tags={"seqlake.table": table, "seqlake.published_after_s": str(int(published_after.total_seconds()))},
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
    DAY, "offline CTR of the day's candidates", published_after=dt.timedelta(0),
)
