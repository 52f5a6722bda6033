"""seqlake's entities and feature views for Feast, generated from
features.definitions.VIEWS at import, so that they cannot drift from it.

Same views, features, keys, TTLs and validity delays as seqlake's own store,
typed from the catalog's Arrow schemas (pipelines.lakehouse.tables), over the
same Delta tables under $SEQLAKE_LAKEHOUSE (read at `feast apply`; the
registry keeps the resolved paths). The event timestamp `visible_from` is not
a column of the tables: seqlake_offline_store derives it from the run ledger
(the instant the snapshot's night published it + 1 µs), and the expiry from
the snapshot's date + valid_after + ttl, so that Feast's point-in-time rule
gives exactly seqlake's (see that module).

Feast finds the objects of a repo among each module's globals: every entity
and view is bound to a global of its own name below.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pyarrow as pa
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

# `feast apply` runs with this folder on the path; seqlake's packages are two levels up
# (the Feast venv also has them installed, without their dependencies).
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

from features import definitions as seqlake  # noqa: E402

VISIBLE_FROM = "visible_from"

_lakehouse = os.environ.get("SEQLAKE_LAKEHOUSE")
if not _lakehouse:
    raise RuntimeError("set SEQLAKE_LAKEHOUSE to the lakehouse root (a folder or s3://bucket/prefix)")
if not os.environ.get("SEQLAKE_FEAST_DIR"):  # else Feast writes to a folder named "${SEQLAKE_FEAST_DIR}"
    raise RuntimeError("set SEQLAKE_FEAST_DIR to a folder for Feast's registry and online store")
# delta-rs names Hadoop's s3a:// s3://; a local folder is made absolute (the registry outlives the cwd).
LAKEHOUSE = _lakehouse.replace("s3a://", "s3://", 1) if "://" in _lakehouse else os.path.abspath(_lakehouse)

_SCALARS = {pa.int32(): Int32, pa.int64(): Int64, pa.float32(): Float32, pa.float64(): Float64, pa.string(): String}
_VALUE_TYPES = {pa.int32(): ValueType.INT32, pa.int64(): ValueType.INT64, pa.string(): ValueType.STRING}


def feast_type(kind: pa.DataType):
    """Feast's type of an Arrow type (lists of lists included: BSE sums per bucket)."""
    if pa.types.is_list(kind):
        return Array(feast_type(kind.value_type))
    if kind not in _SCALARS:
        raise TypeError(f"no Feast type for Arrow {kind}")
    return _SCALARS[kind]


def feast_entity(entity: seqlake.Entity, key_type: pa.DataType, owner: str) -> Entity:
    return Entity(name=entity.name, join_keys=[entity.join_key], value_type=_VALUE_TYPES[key_type],
                  description=entity.description, owner=owner)


def feast_view(view: seqlake.FeatureView, entities: dict[str, Entity]) -> FeatureView:
    table = view.source.name
    valid_after_s = str(int(view.valid_after.total_seconds()))
    tags = {TABLE: table, PARTITION_COLUMN: view.event_time, VALID_AFTER_S: valid_after_s,
            JOIN_KEYS: ",".join(view.join_keys)}
    if view.order_by:
        tags[ORDER_BY] = ",".join(view.order_by)
    source = FileSource(
        name=table.replace("/", "_"), path=f"{LAKEHOUSE.rstrip('/')}/{table}", file_format=DeltaFormat(),
        # A range run publishes several dates at one instant: Feast breaks the tie by the
        # created timestamp, the snapshot's own instant, so that the newest date wins as in seqlake.
        timestamp_field=VISIBLE_FROM, created_timestamp_column=VALID_AT, owner=view.owner, tags=tags,
        description=f"Delta table {table}, one snapshot per {view.event_time}, valid {view.valid_after} after it, "
                    "as its night published it",
    )
    return FeatureView(
        name=view.name, entities=[entities[e.name] for e in view.entities], ttl=view.ttl, owner=view.owner,
        description=view.description,
        schema=[*(Field(name=k, dtype=feast_type(view.key_type(k))) for k in view.join_keys),
                *(Field(name=f, dtype=feast_type(view.feature_type(f))) for f in view.features)],
        source=source, online=True, tags={TABLE: table, VALID_AFTER_S: valid_after_s},
    )


_entities = {
    entity.name: feast_entity(entity, view.key_type(entity.join_key), view.owner)
    for view in reversed(seqlake.VIEWS.values()) for entity in view.entities
}
globals().update(_entities)
globals().update({name: feast_view(view, _entities) for name, view in seqlake.VIEWS.items()})
