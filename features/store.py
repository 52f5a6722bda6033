"""Feature-store reads over the views of features.definitions.

- `historical_features`: a point-in-time join on Spark for training sets: per
  (entity, timestamp) row, each view's newest snapshot published strictly
  before the timestamp and within the view's TTL; null otherwise.
- `latest_features`: the same rule for a set of keys at one instant (now by
  default), read with delta-rs and pyarrow, partition-pruned, without Spark.

Columns come back as "<view>__<feature>". Unknown views or features are an
error; keys without a snapshot in reach get nulls, never another key's or a
later snapshot's values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from features.definitions import FeatureView, resolve
from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import native_uri
from pipelines.lakehouse.tables import table_uri

_US_PER_DAY = 86_400_000_000


def column_name(view: FeatureView, feature: str) -> str:
    return f"{view.name}__{feature}"


def _micros(delta: dt.timedelta) -> int:
    return int(delta / dt.timedelta(microseconds=1))


def historical_features(
    spark: SparkSession, lakehouse: str, entities: DataFrame, references: list[str], timestamp: str = "event_timestamp"
) -> DataFrame:
    """`entities` (join keys and a `timestamp` column) with the referenced
    features as they were published before each row's timestamp."""
    wanted = resolve(references)
    rows = entities.withColumn("_row", F.monotonically_increasing_id())
    at = F.unix_micros(F.col(timestamp))
    for view, names in wanted.items():
        keys = list(view.join_keys)
        missing = [k for k in (*keys, timestamp) if k not in entities.columns]
        if missing:
            raise ValueError(f"the entity rows lack {', '.join(missing)} for view {view.name!r}")
        snapshots = _snapshots(spark.read.format("delta").load(table_uri(lakehouse, view.source)), view, names)
        published = F.col("_published")
        matched = (
            rows.select("_row", *keys, at.alias("_at"))
            .join(snapshots, keys)
            .where((published < F.col("_at")) & (published >= F.col("_at") - F.lit(_micros(view.ttl))))
            .withColumn("_newest", F.row_number().over(Window.partitionBy("_row").orderBy(F.desc("_published"))))
            .where(F.col("_newest") == 1)
            .select("_row", *[F.col(n).alias(column_name(view, n)) for n in names])
        )
        rows = rows.join(matched, "_row", "left")
    return rows.orderBy("_row").drop("_row")


def _snapshots(table: DataFrame, view: FeatureView, names: list[str]) -> DataFrame:
    """One row per entity and snapshot with `_published` (µs since the epoch);
    a many-rows view's features become lists ordered by its order_by."""
    published = F.unix_date(F.col(view.event_time)).cast("long") * _US_PER_DAY + _micros(view.published_after)
    keyed = table.select(*view.join_keys, published.alias("_published"), *dict.fromkeys([*view.order_by, *names]))
    if not view.order_by:
        return keyed
    ordered = F.array_sort(F.collect_list(F.struct(*view.order_by, *[F.col(n).alias(f"_f_{n}") for n in names])))
    grouped = keyed.groupBy(*view.join_keys, "_published").agg(ordered.alias("_rows"))
    return grouped.select(*view.join_keys, "_published", *[F.col(f"_rows._f_{n}").alias(n) for n in names])


def latest_features(
    lakehouse: str, keys: Mapping[str, Sequence[int]], references: list[str], at: dt.datetime | None = None
) -> pa.Table:
    """One row per requested entity (the columns of `keys`, in the given order)
    with each referenced feature as published last before `at` (default now,
    UTC) within the view's TTL; null when no such snapshot exists."""
    at = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    at_us = _micros(at - dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    entities = pa.table({k: pa.array(v, pa.int64()) for k, v in keys.items()})
    out = entities
    for view, names in resolve(references).items():
        view_keys = list(view.join_keys)
        if not set(view_keys) <= set(keys):
            raise ValueError(f"view {view.name!r} needs {' and '.join(view_keys)}; given {', '.join(keys) or 'nothing'}")
        found = _per_entity(_snapshot_rows(lakehouse, view, names, entities.select(view_keys), at_us), view, names)
        # Row i of the entities takes the found row of its key (null where none).
        where = pc.index_in(_key_of(entities, view_keys), value_set=_key_of(found, view_keys))
        for name in names:
            out = out.append_column(column_name(view, name), found.column(name).take(where))
    return out


def _key_of(table: pa.Table, keys: list[str]) -> pa.Array:
    if len(keys) == 1:
        return table.column(keys[0]).combine_chunks()
    parts = [pc.cast(table.column(k), pa.string()) for k in keys]
    return pc.binary_join_element_wise(*parts, ":").combine_chunks()


def _snapshot_rows(lakehouse: str, view: FeatureView, names: list[str], entities: pa.Table, at_us: int) -> pa.Table:
    """The rows of the entities' newest snapshot in reach of `at_us`, per entity."""
    try:
        table = DeltaTable(native_uri(table_uri(lakehouse, view.source)))
    except Exception as exc:  # delta-rs raises TableNotFoundError on a missing table
        raise MissingInputError(f"feature view {view.name!r}: no table {view.source.name} under {lakehouse}") from exc
    newest_day = (at_us - 1 - _micros(view.published_after)) // _US_PER_DAY  # published strictly before at
    oldest_day = -(-(at_us - _micros(view.ttl) - _micros(view.published_after)) // _US_PER_DAY)
    if newest_day < oldest_day:
        return pa.table({})
    epoch = dt.date(1970, 1, 1)
    dates = (pa.scalar(epoch + dt.timedelta(days=int(oldest_day)), pa.date32()),
             pa.scalar(epoch + dt.timedelta(days=int(newest_day)), pa.date32()))
    event = pc.field(view.event_time)
    condition = (event >= dates[0]) & (event <= dates[1])
    for key in view.join_keys:
        condition &= pc.field(key).isin(pc.unique(entities.column(key)))
    columns = list(dict.fromkeys([*view.join_keys, view.event_time, *view.order_by, *names]))
    rows = table.to_pyarrow_dataset().to_table(columns=columns, filter=condition)
    if rows.num_rows == 0:
        return rows
    keys = list(view.join_keys)
    newest = rows.group_by(keys).aggregate([(view.event_time, "max")])
    # Each row's entity's newest date, by lookup (Arrow joins do not carry list columns).
    where = pc.index_in(_key_of(rows, keys), value_set=_key_of(newest, keys))
    return rows.filter(pc.equal(rows.column(view.event_time), newest.column(f"{view.event_time}_max").take(where)))


def _per_entity(rows: pa.Table, view: FeatureView, names: list[str]) -> pa.Table:
    keys = list(view.join_keys)
    if rows.num_rows == 0:
        return pa.table({**{k: pa.array([], pa.int64()) for k in keys}, **{n: pa.array([], pa.null()) for n in names}})
    if not view.order_by:
        return rows.select([*keys, *names])
    ordered = rows.sort_by([(c, "ascending") for c in (*keys, *view.order_by)])
    # One list per entity over its consecutive rows (Arrow's hash_list takes no list values).
    key = _key_of(ordered, keys)
    starts = np.flatnonzero(np.concatenate([[True], pc.not_equal(key.slice(1), key.slice(0, len(key) - 1)).to_numpy(zero_copy_only=False)]))
    offsets = pa.array(np.append(starts, len(key)), pa.int32())
    firsts = ordered.take(pa.array(starts))
    return pa.table({
        **{k: firsts.column(k) for k in keys},
        **{n: pa.ListArray.from_arrays(offsets, ordered.column(n).combine_chunks()) for n in names},
    })
