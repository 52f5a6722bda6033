"""Write, audit, publish: a stage's new rows become visible only after its suite passes.

A stage's batch is computed once and held by Spark (a local checkpoint on
the executors' disks), validated there with the table's suite, and only
then those same rows are written to the published table in one commit that
replaces the dates they cover. A batch that would leave a published date
without rows fails too, unless the stage says the date is empty by right
(`empty_by_right`): an empty batch is not a licence to delete. On failure nothing is published: the published table keeps its
version, the batch is written to a staging Delta table of the run's own
(`<lakehouse>/_staging/<table>/<first>_<last>/<run id>`) for inspection and
the job fails with the suite's summary. Rows that arrive as a staging table
already (batch scoring streams its rows into one) are validated at the
version written and published from it (`publish_staged`). Every validation,
passed or not, is a row of ops/quality.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Container

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.errors import QualityGateFailed
from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.files import filesystem, native_uri
from pipelines.lakehouse.session import materialized
from pipelines.lakehouse.tables import OPS_QUALITY, TableSpec, table_uri
from pipelines.lakehouse.writes import date_range_predicate, read_table, replace_where, table_exists
from pipelines.quality.bands import DayRate, trailing_rates
from pipelines.quality.suites import Suite
from pipelines.quality.validation import ExpectationOutcome, QualityResult, validate_suite


class EveryDate:
    """`empty_by_right` of a publish whose batch replaces all its own rows (an
    import: a date its new file no longer holds is gone by right)."""

    def __contains__(self, day: object) -> bool:
        return True


def staging_uri(lakehouse: str, table: TableSpec, first: dt.date, last: dt.date) -> str:
    """A staging location of one run's own for `table`'s dates first..last."""
    return f"{lakehouse.rstrip('/')}/_staging/{table.name}/{first}_{last}/{uuid.uuid4().hex}"


def audit_and_publish(
    spark: SparkSession,
    rows: DataFrame,
    lakehouse: str,
    table: TableSpec,
    predicate: str,
    suite: Suite,
    first: dt.date,
    last: dt.date,
    validated: Callable[[DataFrame], DataFrame] = lambda batch: batch,
    empty_by_right: Container[dt.date] = frozenset(),
    staged_at: str | None = None,
    **options: str | int,
) -> QualityResult:
    """Validate `validated(rows)` (the rows themselves, or lined up with
    another table for checks that compare them) against `suite`, then replace
    the rows of `table` matching `predicate` with `rows`. QualityGateFailed
    when the suite fails, or when the batch would leave a published date
    outside `empty_by_right` without rows; the batch is then staged for
    inspection, unless it is a staging table's version already (`staged_at`)."""
    # Computed once: the rows validated are the rows published, and no source
    # is read twice. One write: no staging copy on the way to the table.
    batch = rows if staged_at else materialized(rows)
    if suite.allow_empty and not batch.limit(1).count():
        result = QualityResult(suite.name, True, 0, 0, (), 0, 0.0, dt.datetime.now(dt.UTC), uuid.uuid4().hex)
    else:
        checked = validated(batch)
        result = validate_suite(checked if checked is batch else materialized(checked), suite)
    emptied = emptied_dates(spark, batch, lakehouse, table, predicate, empty_by_right)
    if emptied:
        result = result.with_outcome(ExpectationOutcome(
            "seqlake_no_published_date_emptied", table.partition_column, False, {str(d): n for d, n in emptied.items()},
            "the batch leaves no published date without rows (published rows each date would lose)",
        ))
    record_quality(lakehouse, result, first, last)
    if not result.success:
        if staged_at is None:
            staged_at = staging_uri(lakehouse, table, first, last)
            (batch.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
             .partitionBy(table.partition_column).save(staged_at))
        raise QualityGateFailed(
            f"{result.summary()}\nnothing was published to {table.name}; the rows it refused are at {staged_at}"
        )
    replace_where(batch, lakehouse, table, predicate, **options)
    return result


def audit_and_publish_dates(
    spark: SparkSession, rows: DataFrame, lakehouse: str, table: TableSpec, first: dt.date, last: dt.date,
    suite: Suite, empty_by_right: Container[dt.date] = frozenset(), **options: str | int,
) -> QualityResult:
    """audit_and_publish of `rows` that replace the date partitions first..last of `table`."""
    return audit_and_publish(spark, rows, lakehouse, table, date_range_predicate(table, first, last), suite, first, last,
                             empty_by_right=empty_by_right, **options)


def published_volumes(spark: SparkSession, lakehouse: str, table: TableSpec, before: dt.date, days: int,
                      rows: str = "true") -> list[DayRate]:
    """The rows (of those matching the SQL `rows`) per published date of `table`
    in the `days` before `before`: the history a volume band comes from."""
    return published_rates(spark, lakehouse, table, f"CASE WHEN {rows} THEN 1 END", before, days)


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
    empty_by_right: Container[dt.date] = frozenset(),
    **options: str | int,
) -> QualityResult:
    """audit_and_publish of rows already staged at `staged_at` (a Delta table);
    the staging table is removed once they are published."""
    version = DeltaTable(native_uri(staged_at)).version()
    # The version validated is the version published, whatever is written there meanwhile.
    staged = spark.read.format("delta").option("versionAsOf", version).load(staged_at)
    result = audit_and_publish(spark, staged, lakehouse, table, predicate, suite, first, last, validated, empty_by_right,
                               staged_at, **options)
    fs_, path = filesystem(staged_at)
    fs_.delete_dir(path)
    return result


def emptied_dates(
    spark: SparkSession, staged: DataFrame, lakehouse: str, table: TableSpec, predicate: str,
    empty_by_right: Container[dt.date],
) -> dict[dt.date, int]:
    """{date: published rows} of the dates that replacing the rows matching
    `predicate` with `staged` would leave empty, those empty by right aside."""
    if not table_exists(spark, lakehouse, table):
        return {}
    column = table.partition_column
    kept = [r[0] for r in staged.select(column).distinct().collect()]
    # Partition pruning: only the files of dates the batch does not cover are read.
    lost = (read_table(spark, lakehouse, table).where(F.expr(predicate) & ~F.col(column).isin(kept))
            .groupBy(column).count().collect())
    return {r[column]: r["count"] for r in sorted(lost) if r[column] not in empty_by_right}


def record_quality(lakehouse: str, result: QualityResult, first: dt.date, last: dt.date) -> None:
    """Append the validation's row to ops/quality (delta-rs: a few rows a night)."""
    row = result.to_row()
    record = {
        "date": [last], "table": [row["table"]], "first_date": [first], "run_id": [row["run_id"]],
        "validated_at": [result.validated_at.replace(tzinfo=None)], "success": [row["success"]],
        "evaluated": [row["evaluated"]], "failed": [row["failed"]], "rows": [row["rows"]], "seconds": [row["seconds"]],
        "failed_expectations": [row["failed_expectations"]], "outcomes": [row["outcomes"]],
    }
    with commit_point(f"append {OPS_QUALITY.name}"):
        write_deltalake(native_uri(table_uri(lakehouse, OPS_QUALITY)), pa.table(record, schema=OPS_QUALITY.schema),
                        mode="append", partition_by=["date"])
