"""Idempotent date-partition writes: a rerun replaces that date, never appends."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.lakehouse.tables import TableSpec, table_uri


def replace_date_partition(df: DataFrame, lakehouse: str, table: TableSpec, day: dt.date) -> None:
    """Atomically replace `table`'s partition for `day` with `df` (created on first write).

    Delta checks that every written row satisfies the replaceWhere predicate, so
    a row of another date fails the write instead of clobbering a neighbour.
    """
    column = table.partition_column
    (
        df.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"{column} = DATE'{day.isoformat()}'")
        .partitionBy(column)
        .save(table_uri(lakehouse, table))
    )


def read_date_partition(
    spark: SparkSession, lakehouse: str, table: TableSpec, day: dt.date
) -> DataFrame:
    return (
        spark.read.format("delta")
        .load(table_uri(lakehouse, table))
        .where(F.col(table.partition_column) == F.lit(day))
    )
