"""Write, audit, publish: a stage's new rows become visible only after its suite passes.

The rows are written to a staging Delta table of their own
(`<lakehouse>/_staging/<table>/<first>_<last>`), validated there with the
table's suite, and only then copied into the published table in one commit
that replaces the dates they cover. On failure nothing is published: the
published table keeps its version, the staged rows stay for inspection (the
next run of the dates overwrites them) and the job fails with the suite's
summary. Every validation, passed or not, is a row of ops/quality.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import pyarrow as pa
from deltalake import write_deltalake
from pyspark.sql import DataFrame, SparkSession

from pipelines.errors import QualityGateFailed
from pipelines.lakehouse.files import filesystem, native_uri
from pipelines.lakehouse.tables import OPS_QUALITY, TableSpec, table_uri
from pipelines.lakehouse.writes import date_range_predicate, read_table, replace_where, table_exists
from pipelines.quality.suites import DayRate, Suite, trailing_rates
from pipelines.quality.validation import QualityResult, validate_suite

QUALITY_SCHEMA = pa.schema([
    pa.field("date", pa.date32(), nullable=False),
    pa.field("table", pa.string(), nullable=False),
    pa.field("first_date", pa.date32()),
    pa.field("run_id", pa.string()),
    pa.field("validated_at", pa.timestamp("us")),
    pa.field("success", pa.bool_()),
    pa.field("evaluated", pa.int64()),
    pa.field("failed", pa.int64()),
    pa.field("rows", pa.int64()),
    pa.field("seconds", pa.float64()),
    pa.field("failed_expectations", pa.string()),
    pa.field("outcomes", pa.string()),
])


def staging_uri(lakehouse: str, table: TableSpec, first: dt.date, last: dt.date) -> str:
    return f"{lakehouse.rstrip('/')}/_staging/{table.name}/{first}_{last}"


def audit_and_publish(
    spark: SparkSession,
    rows: DataFrame,
    lakehouse: str,
    table: TableSpec,
    predicate: str,
    suite: Suite,
    first: dt.date,
    last: dt.date,
    validated: Callable[[DataFrame], DataFrame] = lambda staged: staged,
    **options: str | int,
) -> QualityResult:
    """Stage `rows`, validate `validated(staged rows)` (the rows themselves, or
    lined up with another table for checks that compare them) against `suite`,
    then replace the rows of `table` matching `predicate` with the staged rows.
    QualityGateFailed when the suite fails."""
    staged_at = staging_uri(lakehouse, table, first, last)
    (rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
     .partitionBy(table.partition_column).save(staged_at))
    return publish_staged(spark, staged_at, lakehouse, table, predicate, suite, first, last, validated, **options)


def audit_and_publish_dates(
    spark: SparkSession, rows: DataFrame, lakehouse: str, table: TableSpec, first: dt.date, last: dt.date,
    suite: Suite, **options: str | int,
) -> QualityResult:
    """audit_and_publish of `rows` that replace the date partitions first..last of `table`."""
    return audit_and_publish(spark, rows, lakehouse, table, date_range_predicate(table, first, last), suite, first, last,
                             **options)


def published_rates(
    spark: SparkSession, lakehouse: str, table: TableSpec, rate_expression: str, before: dt.date, days: int
) -> list[DayRate]:
    """The daily rate of `rate_expression` on the published dates of `table` in
    the `days` before `before`: the history a rate band of a new date comes from."""
    if not table_exists(spark, lakehouse, table):
        return []
    return trailing_rates(read_table(spark, lakehouse, table), table.partition_column, rate_expression,
                          before - dt.timedelta(days=days), before - dt.timedelta(days=1))


def publish_staged(
    spark: SparkSession,
    staged_at: str,
    lakehouse: str,
    table: TableSpec,
    predicate: str,
    suite: Suite,
    first: dt.date,
    last: dt.date,
    validated: Callable[[DataFrame], DataFrame] = lambda staged: staged,
    **options: str | int,
) -> QualityResult:
    """The audit and publish half of audit_and_publish, for rows already staged at `staged_at`."""
    staged = spark.read.format("delta").load(staged_at)
    if suite.allow_empty and not staged.limit(1).count():
        result = QualityResult(suite.name, True, 0, 0, (), 0, 0.0, dt.datetime.now(dt.UTC), uuid.uuid4().hex)
    else:
        result = validate_suite(validated(staged), suite)
    record_quality(lakehouse, result, first, last)
    if not result.success:
        raise QualityGateFailed(
            f"{result.summary()}\nnothing was published to {table.name}; the staged rows are at {staged_at}"
        )
    replace_where(staged, lakehouse, table, predicate, **options)
    fs_, path = filesystem(staged_at)
    fs_.delete_dir(path)
    return result


def record_quality(lakehouse: str, result: QualityResult, first: dt.date, last: dt.date) -> None:
    """Append the validation's row to ops/quality (delta-rs: a few rows a night)."""
    row = result.to_row()
    record = {
        "date": [last], "table": [row["table"]], "first_date": [first], "run_id": [row["run_id"]],
        "validated_at": [result.validated_at.replace(tzinfo=None)], "success": [row["success"]],
        "evaluated": [row["evaluated"]], "failed": [row["failed"]], "rows": [row["rows"]], "seconds": [row["seconds"]],
        "failed_expectations": [row["failed_expectations"]], "outcomes": [row["outcomes"]],
    }
    write_deltalake(native_uri(table_uri(lakehouse, OPS_QUALITY)), pa.table(record, schema=QUALITY_SCHEMA),
                    mode="append", partition_by=["date"])
