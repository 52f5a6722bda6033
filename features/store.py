"""Feature-store reads over the views of features.definitions.

- `historical_features`: a point-in-time join on Spark for training sets.
- `latest_features`: the same rule for a set of keys at one instant (now by
  default), read with delta-rs and pyarrow, without Spark.

One rule for both (features.definitions): per entity and instant t, the
snapshot published last strictly before t - at the instant its night's
ledger row landed, read as the table was then (pipelines.lakehouse.publications)
- unless it expired by t; null otherwise. Restating a snapshot later never
changes what a read for an earlier instant returns. An instant without a
time zone is UTC.

Columns come back as "<view>__<feature>". Unknown views or features are an
error; keys without a snapshot in reach get nulls, never another key's or a
later snapshot's values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import threading
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from features.definitions import FeatureView, resolve
from pipelines.lakehouse.files import delta_rows, delta_table
from pipelines.lakehouse.forget import forgotten_in
from pipelines.lakehouse.publications import (
    Publication,
    first_per_date,
    publications,
    publications_in,
    published_dataset,
    rows_filter,
)
from pipelines.lakehouse.tables import OPS_FORGET_REQUESTS, OPS_RUNS
from pipelines.lakehouse.writes import read_as_published, read_table

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def column_name(view: FeatureView, feature: str) -> str:
    return f"{view.name}__{feature}"


def utc(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC; a naive one is read as UTC (never as the machine's local time)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _micros(moment: dt.datetime) -> int:
    return (utc(moment) - _EPOCH) // dt.timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """A view's snapshot: the publication it is read from, visible in (published,
    expires]; `order` ranks snapshots by publication, then date (a range run
    publishes several dates at once: the newest of them wins)."""

    publication: Publication
    published_us: int
    expires_us: int
    order: int = 0

    @property
    def expires_at(self) -> dt.datetime:
        return _EPOCH + dt.timedelta(microseconds=self.expires_us)


def snapshots(lakehouse: str, view: FeatureView) -> list[Snapshot]:
    """Every snapshot of `view`: what each date's night published, in `order`."""
    return view_snapshots(publications(lakehouse, view.source), view)


def view_snapshots(published: list[Publication], view: FeatureView) -> list[Snapshot]:
    """The snapshots of `view` that `published` (its source table's publications) make, in `order`."""
    found = []
    for p in first_per_date(published):
        valid = dt.datetime.combine(p.day, dt.time(), tzinfo=dt.UTC) + view.valid_after
        found.append((_micros(p.published_at), p.day, p, _micros(valid + view.ttl)))
    return [Snapshot(p, published, expires, order) for order, (published, _, p, expires) in enumerate(sorted(found))]


def _visible_within(found: list[Snapshot], first_us: int, last_us: int) -> list[Snapshot]:
    """The snapshots visible at some instant of [first_us, last_us]."""
    return [s for s in found if s.published_us < last_us and s.expires_us >= first_us]


def historical_features(
    spark: SparkSession, lakehouse: str, entities: DataFrame, references: list[str], timestamp: str = "event_timestamp"
) -> DataFrame:
    """`entities` (join keys and a `timestamp` column) with the referenced
    features as they were published before each row's timestamp; one row per
    entity row, in no particular order (rows are matched back by their keys
    and timestamp, so a frame that Spark evaluates twice cannot mix them up)."""
    wanted = resolve(references)
    for view in wanted:
        missing = [k for k in (*view.join_keys, timestamp) if k not in entities.columns]
        if missing:
            raise ValueError(f"the entity rows lack {', '.join(missing)} for view {view.name!r}")
    at = F.unix_micros(F.col(timestamp))
    first_us, last_us = entities.agg(F.min(at), F.max(at)).first()
    rows = entities
    for view, names in wanted.items():
        keys = list(view.join_keys)
        shown = [] if first_us is None else _visible_within(snapshots(lakehouse, view), first_us, last_us)
        points = entities.select(*keys, timestamp).distinct().withColumn("_at", at)
        matched = (
            points.join(_snapshot_rows(spark, lakehouse, view, names, shown), keys)
            .where((F.col("_published") < F.col("_at")) & (F.col("_at") <= F.col("_expires")))
            .withColumn("_newest", F.row_number().over(Window.partitionBy(*keys, timestamp).orderBy(F.desc("_order"))))
            .where(F.col("_newest") == 1)
            .select(*keys, timestamp, *[F.col(n).alias(column_name(view, n)) for n in names])
        )
        rows = rows.join(matched, [*keys, timestamp], "left")
    return rows


def _snapshot_rows(spark: SparkSession, lakehouse: str, view: FeatureView, names: list[str], shown: list[Snapshot]) -> DataFrame:
    """One row per entity and snapshot with `_published`, `_expires` (µs since
    the epoch) and `_order`; a many-rows view's features become lists ordered by its order_by."""
    columns = list(dict.fromkeys([*view.join_keys, *view.order_by, *names]))
    stamps = ("_published", "_expires", "_order")

    def stamped(rows: DataFrame, snapshot: Snapshot | None) -> DataFrame:
        values = (snapshot.published_us, snapshot.expires_us, snapshot.order) if snapshot else (0, 0, 0)
        return rows.select(*columns, *[F.lit(v).cast("long").alias(n) for n, v in zip(stamps, values, strict=True)])

    frames = [stamped(read_as_published(spark, lakehouse, view.source, s.publication), s) for s in shown]
    keyed = functools.reduce(DataFrame.unionByName, frames) if frames else stamped(
        read_table(spark, lakehouse, view.source).limit(0), None)
    if not view.order_by:
        return keyed
    ordered = F.array_sort(F.collect_list(F.struct(*view.order_by, *[F.col(n).alias(f"_f_{n}") for n in names])))
    grouped = keyed.groupBy(*view.join_keys, *stamps).agg(ordered.alias("_rows"))
    return grouped.select(*view.join_keys, *stamps, *[F.col(f"_rows._f_{n}").alias(n) for n in names])


def latest_features(
    lakehouse: str, keys: Mapping[str, Sequence[int]], references: list[str], at: dt.datetime | None = None
) -> pa.Table:
    """One row per requested entity (the columns of `keys`, in the given order)
    with each referenced feature as published last before `at` (default now)
    and not expired at `at`; null when no such snapshot exists."""
    return FeatureReader(lakehouse).latest(keys, references, at)


class FeatureReader:
    """`latest_features` for a process that reads many times (a serving cache,
    an online-store loader): the ledger and each published table version stay
    open between reads. Every read first looks for new ledger commits, so what
    a night publishes between two reads is in the second. Threads may share one
    reader: the ledger's update and the snapshot lists built from it happen under
    one lock (a list built from the rows a concurrent update just replaced would
    stay cached until the next night); the table reads run side by side."""

    def __init__(self, lakehouse: str):
        self.lakehouse = lakehouse
        self._lock = threading.Lock()
        self._ledger: DeltaTable | None = None
        self._runs = OPS_RUNS.schema.empty_table()
        self._forget_requests: DeltaTable | None = None
        self._forgotten: frozenset[int] = frozenset()
        self._snapshots: dict[str, list[Snapshot]] = {}
        # Per (table, version): a published version never changes, so its file list is read once.
        self._datasets: dict[tuple[str, int], ds.Dataset] = {}

    def latest(self, keys: Mapping[str, Sequence[int]], references: list[str], at: dt.datetime | None = None) -> pa.Table:
        """latest_features(lakehouse, keys, references, at)."""
        self._refresh()
        at_us = _micros(at or dt.datetime.now(dt.UTC))
        entities = pa.table({k: pa.array(v, pa.int64()) for k, v in keys.items()})
        out = entities
        for view, names in resolve(references).items():
            view_keys = list(view.join_keys)
            if not set(view_keys) <= set(keys):
                raise ValueError(f"view {view.name!r} needs {' and '.join(view_keys)}; given {', '.join(keys) or 'nothing'}")
            found = _per_entity(self._newest_rows(view, names, entities.select(view_keys), at_us), view, names)
            # Row i of the entities takes the found row of its key (null where none).
            where = pc.index_in(_key_of(entities, view_keys), value_set=_key_of(found, view_keys))
            for name in names:
                out = out.append_column(column_name(view, name), found.column(name).take(where))
        return out

    def _refresh(self) -> None:
        with self._lock:
            before = None if self._ledger is None else self._ledger.version()
            if self._ledger is None:
                try:
                    self._ledger = delta_table(self.lakehouse, OPS_RUNS)
                except TableNotFoundError:  # nothing published yet
                    return
            else:
                self._ledger.update_incremental()
            if self._ledger.version() != before:
                self._runs = delta_rows(self._ledger)
                self._snapshots.clear()
                self._datasets.clear()  # the versions in reach change only with the ledger
            if self._forget_requests_changed():
                self._forgotten = forgotten_in(self._forget_requests)
                self._snapshots.clear()

    def _forget_requests_changed(self) -> bool:
        """Whether a forget request was recorded since the last read (the lock held)."""
        if self._forget_requests is None:
            try:
                self._forget_requests = delta_table(self.lakehouse, OPS_FORGET_REQUESTS)
            except TableNotFoundError:
                return False
            return True
        before = self._forget_requests.version()
        self._forget_requests.update_incremental()
        return self._forget_requests.version() != before

    def _view_snapshots(self, view: FeatureView) -> list[Snapshot]:
        with self._lock:
            if view.name not in self._snapshots:
                self._snapshots[view.name] = view_snapshots(publications_in(self._runs, view.source, self._forgotten), view)
            return self._snapshots[view.name]

    def _dataset(self, view: FeatureView, publication: Publication) -> ds.Dataset:
        key = (view.source.name, publication.table_version)
        if key not in self._datasets:
            self._datasets[key] = published_dataset(self.lakehouse, view.source, publication)
        return self._datasets[key]

    def _newest_rows(self, view: FeatureView, names: list[str], entities: pa.Table, at_us: int) -> pa.Table:
        """The rows of each entity's newest snapshot in reach of `at_us`: snapshots
        read newest first, each for the keys that no newer one had."""
        keys = list(view.join_keys)
        columns = list(dict.fromkeys([*keys, *view.order_by, *names]))
        missing = _unique_keys(entities, keys)
        parts = []
        for snapshot in reversed(_visible_within(self._view_snapshots(view), at_us, at_us)):
            if not missing.num_rows:
                break
            wanted = functools.reduce(lambda a, b: a & b, [pc.field(k).isin(pc.unique(missing.column(k))) for k in keys])
            rows = self._dataset(view, snapshot.publication).to_table(
                columns=columns, filter=rows_filter(view.source, snapshot.publication) & wanted)
            # Several key columns: the filter above is per column; keep the requested combinations only.
            rows = rows.filter(pc.is_in(_key_of(rows, keys), value_set=_key_of(missing, keys)))
            parts.append(rows)
            missing = missing.filter(pc.invert(pc.is_in(_key_of(missing, keys), value_set=_key_of(rows, keys))))
        nonempty = [part for part in parts if part.num_rows]
        return pa.concat_tables(nonempty) if nonempty else pa.table({})


def _unique_keys(entities: pa.Table, keys: list[str]) -> pa.Table:
    return entities.group_by(keys).aggregate([])


def newest_snapshot(lakehouse: str, view: FeatureView, at: dt.datetime | None = None) -> dict[str, object] | None:
    """The snapshot of `view` published last before `at` (default now), expired or
    not: its date, when it was published and expires, and whether it is in reach
    (a read at `at` sees it). None when nothing was published before `at`."""
    at_us = _micros(at or dt.datetime.now(dt.UTC))
    published = [s for s in snapshots(lakehouse, view) if s.published_us < at_us]
    if not published:
        return None
    newest = published[-1]
    return {
        "date": newest.publication.day.isoformat(), "published_at": utc(newest.publication.published_at).isoformat(),
        "expires_at": newest.expires_at.isoformat(), "ttl_hours": view.ttl / dt.timedelta(hours=1),
        "in_reach": at_us <= newest.expires_us,
    }


def _key_of(table: pa.Table, keys: list[str]) -> pa.Array:
    if len(keys) == 1:
        return table.column(keys[0]).combine_chunks()
    parts = [pc.cast(table.column(k), pa.string()) for k in keys]
    return pc.binary_join_element_wise(*parts, ":").combine_chunks()


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


def unanswered_views(lakehouse: str, row: Mapping[str, object], references: list[str],
                     at: dt.datetime) -> dict[str, dict[str, object] | None]:
    """The views of `references` that answered nothing in `row` (a latest_features
    row), each with its newest snapshot before `at`, so that it can say why:
    nothing published before the instant, or that snapshot past its TTL."""
    return {
        view.name: newest_snapshot(lakehouse, view, at)
        for view, names in resolve(references).items() if all(row[column_name(view, n)] is None for n in names)
    }


def why_null(snapshot: dict[str, object] | None) -> str:
    if snapshot is None:
        return "nothing published before this instant"
    if snapshot["in_reach"]:
        return f"no row for these keys in the snapshot as of {snapshot['date']} (published {snapshot['published_at']})"
    return (f"every snapshot is past its TTL: the newest, as of {snapshot['date']} (published {snapshot['published_at']}), "
            f"expired at {snapshot['expires_at']} (TTL {snapshot['ttl_hours']:g} h)")
