"""Idempotent date-partition writes: a rerun replaces that date, never appends."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Iterator, Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.errors import SchemaMismatchError
from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.files import delta_table
from pipelines.lakehouse.publications import Publication
from pipelines.lakehouse.spark_schema import spark_type
from pipelines.lakehouse.tables import TableSpec, spark_type_name, table_uri


def replace_date_partitions(
    df: DataFrame,
    lakehouse: str,
    table: TableSpec,
    first: dt.date,
    last: dt.date | None = None,
    **options: str | int,
) -> None:
    """Atomically replace `table`'s partitions from `first` to `last` (default: `first`
    only) with `df`, in one commit; the table is created on first write.

    Delta checks that every written row satisfies the replaceWhere predicate, so
    a row of another date fails the write instead of clobbering a neighbour.
    """
    replace_where(df, lakehouse, table, date_range_predicate(table, first, last), **options)


def append_rows(df: DataFrame, lakehouse: str, table: TableSpec, **options: str | int) -> None:
    """Add `df` to `table` in one commit (the table is created on first write):
    for rows that no other row of the table stands for."""
    _add_catalog_columns(df.sparkSession, lakehouse, table)
    with commit_point(f"append {table.name}"):
        df.write.format("delta").mode("append").options(**options).partitionBy(table.partition_column).save(
            table_uri(lakehouse, table)
        )


def date_range_predicate(table: TableSpec, first: dt.date, last: dt.date | None = None) -> str:
    """The rows of `table`'s date partitions from `first` to `last` (default `first`), as SQL."""
    column = table.partition_column
    return f"{column} >= DATE'{first}' AND {column} <= DATE'{last or first}'"


def replace_where(
    df: DataFrame, lakehouse: str, table: TableSpec, predicate: str, **options: str | int
) -> None:
    """Atomically replace the rows of `table` matching `predicate` with `df`."""
    if table.lookup_row_group_bytes:
        # Files of disjoint key ranges (a key read opens one file a date, found by the
        # Delta log's statistics), each sorted by key. The partition column first: the
        # writer needs that order and then sorts nothing again.
        order = [table.partition_column, *(k for k in table.key if k != table.partition_column)]
        df = df.repartitionByRange(*order).sortWithinPartitions(*order)
    _add_catalog_columns(df.sparkSession, lakehouse, table)
    with _parquet_row_groups(df.sparkSession, table.lookup_row_group_bytes), commit_point(f"replace {table.name}"):
        (
            df.write.format("delta")
            .mode("overwrite")
            .options(**options)
            .option("replaceWhere", predicate)
            .partitionBy(table.partition_column)
            .save(table_uri(lakehouse, table))
        )


def _add_catalog_columns(spark: SparkSession, lakehouse: str, table: TableSpec) -> None:
    """Add to `table`, where it exists, the columns the catalog declares that it
    lacks (a lakehouse made before them), in one commit of their own: a write
    that carries them would fail on the table's older schema. Its rows before
    read as null there, as the catalog allows: a column added later is
    nullable (SchemaMismatchError otherwise). A write never adds a column the
    catalog does not name (Delta refuses a frame that has one)."""
    if not table_exists(spark, lakehouse, table):
        return
    missing = [f for f in table.schema if f.name not in read_table_as_written(spark, lakehouse, table).columns]
    if not missing:
        return
    required = [f.name for f in missing if not f.nullable]
    if required:
        raise SchemaMismatchError(f"{table.name} lacks the required columns {required}: only nullable columns are added to a table")
    columns = ", ".join(f"{f.name} {spark_type_name(f.type).upper()}" for f in missing)
    spark.sql(f"ALTER TABLE delta.`{table_uri(lakehouse, table)}` ADD COLUMNS ({columns})")


def _parquet_row_groups(spark: SparkSession, size_bytes: int | None) -> contextlib.AbstractContextManager[None]:
    """Parquet row groups of `size_bytes` for the writes inside (the default when
    None). Delta's writer takes Parquet's settings from the session, not from a
    write's options (an option is ignored)."""
    return contextlib.nullcontext() if size_bytes is None else session_conf(spark, {PARQUET_BLOCK_SIZE: str(size_bytes)})


@contextlib.contextmanager
def session_conf(spark: SparkSession, conf: dict[str, str]) -> Iterator[None]:
    """The session's `conf` for the work inside, its settings before restored after."""
    before = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


PARQUET_BLOCK_SIZE = "parquet.block.size"


def read_date_partitions(
    spark: SparkSession, lakehouse: str, table: TableSpec, first: dt.date, last: dt.date | None = None
) -> DataFrame:
    return read_table(spark, lakehouse, table).where(
        F.col(table.partition_column).between(F.lit(first), F.lit(last or first))
    )


def read_table(spark: SparkSession, lakehouse: str, table: TableSpec) -> DataFrame:
    """`table`'s rows with every column of the catalog: one added to the catalog
    since the table was written reads as null (see _add_catalog_columns)."""
    return with_catalog_columns(read_table_as_written(spark, lakehouse, table), table)


def read_table_as_written(spark: SparkSession, lakehouse: str, table: TableSpec) -> DataFrame:
    return spark.read.format("delta").load(table_uri(lakehouse, table))


def with_catalog_columns(frame: DataFrame, table: TableSpec) -> DataFrame:
    """`frame` (rows of `table`, as some version of it was written) with the
    catalog's nullable columns it lacks as typed nulls, in the catalog's order."""
    present = set(frame.columns)
    if all(f.name in present for f in table.schema if f.nullable):
        return frame
    columns = [F.col(f.name) if f.name in present else F.lit(None).cast(spark_type(f.type)).alias(f.name)
               for f in table.schema if f.name in present or f.nullable]
    return frame.select(*columns, *[c for c in frame.columns if c not in table.schema.names])


def read_as_published(spark: SparkSession, lakehouse: str, table: TableSpec, publication: Publication) -> DataFrame:
    """The rows of one publication, from the table's version it recorded (Delta time travel)."""
    return read_published(spark, lakehouse, table, [publication])


def read_published(spark: SparkSession, lakehouse: str, table: TableSpec, published: Sequence[Publication]) -> DataFrame:
    """The rows of `published` (pipelines.lakehouse.publications) as they were
    published: one time-travel read per table version and embedding version;
    no rows (the table's schema) when there are none."""
    if not published:
        return read_table(spark, lakehouse, table).limit(0)
    days: dict[tuple[int, str | None], list[dt.date]] = {}
    for p in published:
        days.setdefault((p.table_version, p.embedding_version), []).append(p.day)
    frames = []
    for (version, embedding_version), dates in sorted(days.items(), key=lambda kv: kv[0][0]):
        frame = with_catalog_columns(
            spark.read.format("delta").option("versionAsOf", version).load(table_uri(lakehouse, table)), table)
        frame = frame.where(F.col(table.partition_column).isin(sorted(dates)))
        if table.embedding_version_column and embedding_version is not None:
            frame = frame.where(F.col(table.embedding_version_column) == embedding_version)
        frames.append(frame)
    excluded = frozenset().union(*(p.excluded_users for p in published))
    if excluded:
        frames = [frame.where(~F.col("user_id").isin(sorted(excluded))) for frame in frames]
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def table_exists(spark: SparkSession, lakehouse: str, table: TableSpec) -> bool:
    return DeltaTable.isDeltaTable(spark, table_uri(lakehouse, table))


def delete_partitions_before(spark: SparkSession, lakehouse: str, table: TableSpec, oldest_kept: dt.date) -> None:
    """Delete the date partitions of `table` older than `oldest_kept`; nothing is
    committed when there are none (the partition list is read from the log)."""
    column = table.partition_column
    dates = {p[column] for p in delta_table(lakehouse, table).partitions()}
    if any(dt.date.fromisoformat(day) < oldest_kept for day in dates):
        with commit_point(f"delete {table.name}"):
            DeltaTable.forPath(spark, table_uri(lakehouse, table)).delete(F.col(column) < F.lit(oldest_kept))
