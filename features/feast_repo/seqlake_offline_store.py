"""Feast's DuckDB offline store, reading seqlake's Delta tables in place.

Two things stock Feast (0.67) cannot do here, and this store adds:

1. Read Delta without a download. Stock DuckDB reads `DeltaFormat` sources with
   ibis' `read_delta`, i.e. DuckDB's `delta` extension, which DuckDB fetches
   from its own extension site on first use. This store reads them with
   delta-rs (`deltalake`, as seqlake's own reader does) and lets DuckDB scan
   the Arrow dataset: same tables, no copy, no extension.
2. Publication time. A seqlake snapshot is a date partition; the snapshot
   dated A is published at A + `published_after` (UTC) and a read at t sees it
   iff published < t <= published + ttl. A source tagged
   `seqlake.partition_column` gets a derived event-timestamp column (the
   source's `timestamp_field`, `visible_from`) = A + published_after + 1 µs,
   the first instant a seqlake read sees the snapshot, and expiry at
   published + ttl. Under Feast's own rule (event <= t <= event + ttl) that is
   exactly seqlake's rule.

A source tagged `seqlake.order_by` (several rows per entity and snapshot, e.g.
BSE buckets) is read as one row per entity and snapshot whose columns are the
lists of their values in that order, as seqlake's reader returns them.

Sources without these tags are read as stock DuckDB reads them.
"""

from __future__ import annotations

import datetime as dt
import itertools

import ibis
import ibis.expr.datatypes as ibis_dt
import pandas as pd
import pyarrow.compute as pc
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

PARTITION_COLUMN = "seqlake.partition_column"
PUBLISHED_AFTER_S = "seqlake.published_after_s"
JOIN_KEYS = "seqlake.join_keys"
ORDER_BY = "seqlake.order_by"

_US = dt.timedelta(microseconds=1)
_names = (f"seqlake_delta_{i}" for i in itertools.count())


class SeqlakeDeltaOfflineStoreConfig(feast_duckdb.DuckDBOfflineStoreConfig):
    type: StrictStr = "seqlake_offline_store.SeqlakeDeltaOfflineStore"


def _is_seqlake(source: DataSource) -> bool:
    return isinstance(source, FileSource) and isinstance(source.file_format, DeltaFormat) and PARTITION_COLUMN in source.tags


def _published_after(source: DataSource) -> dt.timedelta:
    return dt.timedelta(seconds=int(source.tags.get(PUBLISHED_AFTER_S, "0")))


def _storage_options(source: FileSource) -> dict:
    return {"AWS_ENDPOINT_URL": source.s3_endpoint_override} if source.s3_endpoint_override else {}


def _reader(windows: dict | None = None):
    """A data_source_reader for Feast's ibis engine; `windows` (id of a source ->
    first and last snapshot date) prunes seqlake sources to the partitions a
    read can reach."""

    def read(source: DataSource, repo_path: str):
        if not _is_seqlake(source):
            return feast_duckdb._read_data_source(source, repo_path)
        from deltalake import DeltaTable

        partition = source.tags[PARTITION_COLUMN]
        dataset = DeltaTable(source.path, storage_options=_storage_options(source) or None).to_pyarrow_dataset()
        if windows and id(source) in windows:
            lo, hi = windows[id(source)]
            dataset = dataset.filter((pc.field(partition) >= lo) & (pc.field(partition) <= hi))
        backend = ibis.get_backend()  # Feast's ibis engine works on the default (DuckDB) backend
        name = next(_names)
        backend.con.register(name, dataset)  # scanned lazily, projections and filters pushed down
        table = backend.table(name)
        if ORDER_BY in source.tags:
            keys = [*source.tags[JOIN_KEYS].split(","), partition]
            order = [table[c] for c in source.tags[ORDER_BY].split(",")]
            table = table.group_by(keys).aggregate(
                **{c: table[c].collect(order_by=order) for c in table.columns if c not in keys}
            )
        # The date's midnight (ibis pins DuckDB's session time zone to UTC) + the delay + 1 µs.
        midnight = table[partition].cast(ibis_dt.Timestamp(timezone="UTC"))
        delay = ibis.interval(microseconds=(_published_after(source) + _US) // _US)
        return table.mutate(**{source.timestamp_field: midnight + delay})

    return read


def _expiry(timestamp_field: str, ttl: dt.timedelta) -> str:
    """visible_from + ttl - 1 µs = published + ttl (the last instant in reach)."""
    column = '"' + timestamp_field.replace('"', '""') + '"'
    return f"{column} + to_microseconds({(ttl - _US) // _US})"


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
                # Published in [first - ttl, last): the dates of such snapshots (a superset).
                after = _published_after(view.batch_source)
                windows[id(view.batch_source)] = ((first - view.ttl - after).date(), (last - after).date())
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
