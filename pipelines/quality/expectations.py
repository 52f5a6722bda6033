"""Great Expectations 1.x building blocks for the suites: the two expectations
GE lacks (a table schema compared by Spark type, a rate with nothing to judge)
and short constructors for the ones the suites use, each with the description
a failure report shows. Derived yes/no columns are Spark SQL expressions
(`check`): GE has no expectation for "an array is sorted", so a derived
`dq_is_sorted` computes it and an in-set expectation checks it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import great_expectations.expectations as gxe
from great_expectations.expectations.expectation import BatchExpectation

from pipelines.lakehouse.tables import TableSpec
from pipelines.quality.bands import Band, DayRate, band_text, volume_band

# Derived columns carry this prefix; the schema expectation ignores them.
DERIVED_PREFIX = "dq_"


class ExpectTableSchemaToEqual(BatchExpectation):
    """The batch has exactly these columns with these Spark types (`simpleString`,
    e.g. "bigint", "array<int>"); columns starting with `ignore_prefix` (the
    derived dq_ columns) are not part of the table. Nullability is not compared:
    a staged DataFrame and its Delta table disagree on it without being wrong.

    GE's own ExpectColumnValuesToBeOfType only compares the type's class on
    Spark (any ArrayType passes for array<bigint>), hence this one expectation,
    which reads the schema only (no Spark job)."""

    columns: dict[str, str]
    ignore_prefix: str = DERIVED_PREFIX

    metric_dependencies: ClassVar[tuple[str, ...]] = ("table.column_types",)
    success_keys: ClassVar[tuple[str, ...]] = ("columns", "ignore_prefix")
    args_keys: ClassVar[tuple[str, ...]] = ("columns",)
    domain_keys: ClassVar[tuple[str, ...]] = ("batch_id", "row_condition", "condition_parser")

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None) -> dict:
        observed = {
            c["name"]: (c["type"].simpleString() if hasattr(c["type"], "simpleString") else str(c["type"]))
            for c in metrics["table.column_types"]
            if "." not in c["name"] and not c["name"].startswith(self.ignore_prefix)
        }
        missing = sorted(set(self.columns) - set(observed))
        extra = sorted(set(observed) - set(self.columns))
        mismatched = {
            name: {"expected": self.columns[name], "observed": observed[name]}
            for name in sorted(set(self.columns) & set(observed))
            if self.columns[name] != observed[name]
        }
        return {
            "success": not (missing or extra or mismatched),
            "result": {"observed_value": {"missing": missing, "extra": extra, "mismatched": mismatched}},
        }


class ExpectColumnRateToBeBetween(gxe.ExpectColumnMeanToBeBetween):
    """The mean of a 0/1 column (null where a row does not count) within the
    bounds. A batch where no row counts (a date without clicks) has no rate to
    judge: it passes while the previous dates had no rate either (a new feed),
    and fails once they had one (`rate_required`): a feed that stopped."""

    rate_required: bool = False

    def _validate(self, metrics: dict, runtime_configuration: dict | None = None, execution_engine=None) -> dict:
        if metrics.get("column.mean") is None:
            return {"success": not self.rate_required, "result": {"observed_value": None}}
        return super()._validate(metrics, runtime_configuration, execution_engine)


def mean_in(column: str, band: Band, description: str, history: Sequence[DayRate]) -> Any:
    return ExpectColumnRateToBeBetween(
        column=column, min_value=band.low, max_value=band.high, strict_min=band.strict_low, strict_max=band.strict_high,
        rate_required=any(h.rows for h in history), description=f"{description} in {band_text(band)} ({band.basis})",
        catch_exceptions=True,
    )


def rows_on(column: str, newest: dt.date, history: Sequence[DayRate]) -> tuple[dict[str, str], Any]:
    """The derived column and expectation that hold the rows of `newest` to its volume band."""
    band = volume_band(history)
    derived = {"dq_newest_row": f"CASE WHEN {column} = DATE'{newest}' THEN 1 ELSE 0 END"}
    high = None if math.isinf(band.high) else band.high
    expectation = gxe.ExpectColumnSumToBeBetween(
        column="dq_newest_row", min_value=band.low, max_value=high,
        description=f"rows of {newest} in [{band.low:,.0f}, {'inf' if high is None else f'{high:,.0f}'}] ({band.basis})",
        catch_exceptions=True,
    )
    return derived, expectation


def all_true(column: str, description: str) -> Any:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True], description=description, catch_exceptions=True)


def not_null(*columns: str) -> list[Any]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column=c, description=f"{c} is never null", catch_exceptions=True)
        for c in columns
    ]


def unique(*columns: str) -> Any:
    if len(columns) == 1:
        return gxe.ExpectColumnValuesToBeUnique(
            column=columns[0], description=f"{columns[0]} is unique", catch_exceptions=True
        )
    return gxe.ExpectCompoundColumnsToBeUnique(
        column_list=list(columns), description=f"({', '.join(columns)}) is unique", catch_exceptions=True
    )


def in_set(column: str, values: Sequence[Any]) -> Any:
    return gxe.ExpectColumnValuesToBeInSet(
        column=column, value_set=list(values), description=f"{column} in {sorted(values)}", catch_exceptions=True
    )


def between(column: str, low: float | None, high: float | None) -> Any:
    text = {(True, True): f"{low} <= {column} <= {high}", (True, False): f"{column} >= {low}", (False, True): f"{column} <= {high}"}
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, min_value=low, max_value=high,
        description=text[(low is not None, high is not None)], catch_exceptions=True,
    )


def table_schema(table: TableSpec) -> Any:
    return ExpectTableSchemaToEqual(columns=table.columns, description="columns and types as published", catch_exceptions=True)


def not_empty() -> Any:
    return gxe.ExpectTableRowCountToBeBetween(min_value=1, description="the batch is not empty", catch_exceptions=True)


def check(expression: str) -> str:
    """A derived yes/no column: null (an operand missing) counts as no, since an
    in-set expectation skips nulls."""
    return f"coalesce({expression}, false)"


def checks(expressions: Mapping[str, str]) -> dict[str, str]:
    return {name: check(expression) for name, expression in expressions.items()}


def sorted_array(array: str) -> str:
    # Element-wise comparison of the array with its sorted copy; an empty array is sorted.
    return f"array_sort({array}) = {array}"


# The date a millisecond timestamp falls on, as ingest computes event_date
# (to_date of timestamp_millis, in the session time zone).
def day_of(ms: str) -> str:
    return f"to_date(timestamp_millis({ms}))"


