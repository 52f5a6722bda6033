"""Feast's DuckDB offline store, reading seqlake's Delta tables in place.

Two things stock Feast (0.67) cannot do here, and this store adds:

1. Read Delta without a download. Stock DuckDB reads `DeltaFormat` sources with
   ibis' `read_delta`, i.e. DuckDB's `delta` extension, which DuckDB fetches
   from its own extension site on first use. This store reads them with
   delta-rs (`deltalake`, as seqlake's own reader does) and lets DuckDB scan
   the Arrow rows: same tables, no extension.
2. Publication. A seqlake snapshot is a date partition, visible from the
   instant the night that built it published it, as the table was then
   (pipelines.lakehouse.publications: the run ledger's version and instant;
   later restatements are not what was served), and it expires `ttl` after
   the instant it describes, its date + `valid_after`. A read at t sees it iff
   published < t <= valid + ttl. A source tagged `seqlake.table` is read
   publication by publication, each row with a derived event-timestamp column
   (the source's `timestamp_field`, `visible_from`) = published + 1 µs, the
   first instant a seqlake read sees it, and `seqlake_valid_at`, from which
   the expiry is valid + ttl. Under Feast's own rule (event <= t <= expiry)
   that is exactly seqlake's rule.

A source tagged `seqlake.order_by` (several rows per entity and snapshot, e.g.
BSE buckets) is read as one row per entity and snapshot whose columns are the
lists of their values in that order, as seqlake's reader returns them.

Needs seqlake's package on the path for the publications (the Feast venv has
it installed without its dependencies: `make setup`). Sources without these
tags are read as stock DuckDB reads them.
"""

from __future__ import annotations

import datetime as dt
import itertools

import ibis
import pandas as pd
import pyarrow as pa
from feast.data_format import DeltaFormat
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores import duckdb as feast_duckdb
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.ibis import (
    get_historical_features_ibis,
    pull_all_from_table_or_query_ibis,
    pull_latest_from_table_or_query_ibis,
)
from feast.infra.offline_stores.offline_store import RetrievalJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import RepoConfig
from pydantic import StrictStr

TABLE = "seqlake.table"
PARTITION_COLUMN = "seqlake.partition_column"
VALID_AFTER_S = "seqlake.valid_after_s"
JOIN_KEYS = "seqlake.join_keys"
ORDER_BY = "seqlake.order_by"
VALID_AT = "seqlake_valid_at"

_US = dt.timedelta(microseconds=1)
_names = (f"seqlake_delta_{i}" for i in itertools.count())


class SeqlakeDeltaOfflineStoreConfig(feast_duckdb.DuckDBOfflineStoreConfig):
    type: StrictStr = "seqlake_offline_store.SeqlakeDeltaOfflineStore"


def _is_seqlake(source: DataSource) -> bool:
    return isinstance(source, FileSource) and isinstance(source.file_format, DeltaFormat) and TABLE in source.tags


def _valid_after(source: DataSource) -> dt.timedelta:
    return dt.timedelta(seconds=int(source.tags.get(VALID_AFTER_S, "0")))


def _published_rows(source: FileSource, window: tuple[dt.datetime, dt.datetime, dt.timedelta] | None) -> pa.Table:
    """The rows of each snapshot of `source` as its night published it, with
    visible_from and seqlake_valid_at; `window` (first and last instant read,
    ttl) leaves out the snapshots no read in it can see."""
    from deltalake import DeltaTable

    from pipelines.lakehouse.files import delta_dataset
    from pipelines.lakehouse.publications import (
        first_per_date,
        publications,
        published_dataset,
        rows_filter,
    )
    from pipelines.lakehouse.tables import TABLES

    spec = TABLES[source.tags[TABLE]]
    lakehouse = source.path[: -len(spec.name)].rstrip("/")
    parts = []
    for p in first_per_date(publications(lakehouse, spec)):
        published = p.published_at.replace(tzinfo=dt.UTC)
        valid = dt.datetime.combine(p.day, dt.time(), tzinfo=dt.UTC) + _valid_after(source)
        if window and not (published < window[1] and valid + window[2] >= window[0]):
            continue
        rows = published_dataset(lakehouse, spec, p).to_table(filter=rows_filter(spec, p))
        stamp = pa.timestamp("us", tz="UTC")
        rows = rows.append_column(source.timestamp_field, pa.array([published + _US] * rows.num_rows, stamp))
        parts.append(rows.append_column(VALID_AT, pa.array([valid] * rows.num_rows, stamp)))
    if parts:
        return pa.concat_tables(parts, promote_options="default")
    empty = delta_dataset(DeltaTable(source.path)).schema.empty_table()
    return empty.append_column(source.timestamp_field, pa.array([], pa.timestamp("us", tz="UTC"))).append_column(
        VALID_AT, pa.array([], pa.timestamp("us", tz="UTC")))


def _reader(windows: dict | None = None):
    """A data_source_reader for Feast's ibis engine; `windows` (id of a source ->
    first and last instant read, and the view's ttl) prunes seqlake sources to
    the snapshots a read can reach."""

    def read(source: DataSource, repo_path: str):
        if not _is_seqlake(source):
            return feast_duckdb._read_data_source(source, repo_path)
        backend = ibis.get_backend()  # Feast's ibis engine works on the default (DuckDB) backend
        name = next(_names)
        backend.con.register(name, _published_rows(source, (windows or {}).get(id(source))))
        table = backend.table(name)
        if ORDER_BY in source.tags:
            keys = [*source.tags[JOIN_KEYS].split(","), source.tags[PARTITION_COLUMN], source.timestamp_field, VALID_AT]
            order = [table[c] for c in source.tags[ORDER_BY].split(",")]
            table = table.group_by(keys).aggregate(
                **{c: table[c].collect(order_by=order) for c in table.columns if c not in keys}
            )
        return table

    return read


def _expiry(timestamp_field: str, ttl: dt.timedelta) -> str:
    """The last instant in reach: the instant the snapshot describes + ttl."""
    return f'"{VALID_AT}" + to_microseconds({ttl // _US})'


class SeqlakeDeltaOfflineStore(feast_duckdb.DuckDBOfflineStore):
    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: list[FeatureView],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        seqlake_views = [v for v in feature_views if v.batch_source is not None and _is_seqlake(v.batch_source)]
        if seqlake_views and len(seqlake_views) != len(feature_views):
            raise ValueError("seqlake and non-seqlake feature views cannot be joined in one retrieval")
        windows = {}
        times = [c for c in getattr(entity_df, "columns", []) if pd.api.types.is_datetime64_any_dtype(entity_df[c])]
        if times and len(entity_df):
            at = pd.to_datetime(entity_df["event_timestamp" if "event_timestamp" in times else times[0]], utc=True)
            first, last = at.min().to_pydatetime(), at.max().to_pydatetime()
            for view in (v for v in seqlake_views if v.ttl):
                windows[id(view.batch_source)] = (first, last, view.ttl)
        return get_historical_features_ibis(
            config=config,
            feature_views=feature_views,
            feature_refs=feature_refs,
            entity_df=entity_df,
            registry=registry,
            project=project,
            full_feature_names=full_feature_names,
            data_source_reader=_reader(windows),
            data_source_writer=feast_duckdb._write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            event_expire_timestamp_fn=_expiry if seqlake_views else None,
            filter_by_created_timestamp=filter_by_created_timestamp,
        )

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None,
        start_date: dt.datetime,
        end_date: dt.datetime,
    ) -> RetrievalJob:
        return pull_latest_from_table_or_query_ibis(
            config=config,
            data_source=data_source,
            join_key_columns=join_key_columns,
            feature_name_columns=feature_name_columns,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            start_date=start_date,
            end_date=end_date,
            data_source_reader=_reader(),
            data_source_writer=feast_duckdb._write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
        )

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: list[str],
        feature_name_columns: list[str],
        timestamp_field: str,
        created_timestamp_column: str | None = None,
        start_date: dt.datetime | None = None,
        end_date: dt.datetime | None = None,
    ) -> RetrievalJob:
        return pull_all_from_table_or_query_ibis(
            config=config,
            data_source=data_source,
            join_key_columns=join_key_columns,
            feature_name_columns=feature_name_columns,
            timestamp_field=timestamp_field,
            created_timestamp_column=created_timestamp_column,
            start_date=start_date,
            end_date=end_date,
            data_source_reader=_reader(),
            data_source_writer=feast_duckdb._write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
        )
