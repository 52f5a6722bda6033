"""Validate a Spark DataFrame against a table's suite with Great Expectations 1.x.

The audit step of write-audit-publish (pipelines.quality.gate): a stage's
batch is held by Spark, `validate_suite` checks those rows, and only a
successful QualityResult lets the stage publish them.

Each call builds an ephemeral GX context (in memory, nothing written to disk,
nothing shared between calls), a Spark data source on the caller's session,
one DataFrame asset with a whole-DataFrame batch definition, the suite and a
ValidationDefinition, and runs it once. GX reads the DataFrame once per
group of metrics: give it rows that are materialized already (the gate
checkpoints its batches), not a plan that recomputes its sources each time.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame

# Before GX is imported: no usage statistics.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.expectation import (  # noqa: E402
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    MulticolumnMapExpectation,
)

# GX logs INFO/WARNING chatter (e.g. data docs, store setup) we do not want per night.
logging.getLogger("great_expectations").setLevel(logging.ERROR)

_EXAMPLES = 5
_INDEX = "dq_index"


@dataclasses.dataclass(frozen=True)
class ExpectationOutcome:
    type: str
    column: str | None
    success: bool
    observed: Any
    text: str

    def line(self) -> str:
        return f"{'ok  ' if self.success else 'FAIL'} {self.text}: {self.observed_text()}"

    def observed_text(self) -> str:
        return _observed_text(self.observed)


@dataclasses.dataclass(frozen=True)
class QualityResult:
    table: str
    success: bool
    evaluated: int
    failed: int
    outcomes: tuple[ExpectationOutcome, ...]
    rows: int | None
    seconds: float
    validated_at: dt.datetime
    run_id: str

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if not o.success]

    def summary(self) -> str:
        """Readable text: a headline, then each failed expectation and what was observed."""
        head = (
            f"{self.table}: {'passed' if self.success else 'FAILED'}, "
            f"{self.evaluated - self.failed}/{self.evaluated} expectations met"
            f"{'' if self.rows is None else f' on {self.rows} rows'} in {self.seconds:.1f} s"
        )
        return "\n".join([head, *(f"  - {o.text}: {o.observed_text()}" for o in self.failures)])

    def with_outcome(self, outcome: ExpectationOutcome) -> QualityResult:
        """This result with one more expectation's outcome (a check made outside GX)."""
        return dataclasses.replace(
            self, outcomes=(*self.outcomes, outcome), evaluated=self.evaluated + 1,
            failed=self.failed + (not outcome.success), success=self.success and outcome.success,
        )

    def to_row(self) -> dict[str, Any]:
        """A flat row for a results table (scalars and JSON text)."""
        return {
            "table": self.table,
            "run_id": self.run_id,
            "validated_at": self.validated_at.isoformat(),
            "success": self.success,
            "evaluated": self.evaluated,
            "failed": self.failed,
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "failed_expectations": json.dumps([o.text for o in self.failures]),
            "outcomes": json.dumps([dataclasses.asdict(o) for o in self.outcomes], default=str),
        }


def validate_suite(df: DataFrame, suite: Any, **options: Any) -> QualityResult:
    """`df` checked against a suites.Suite (its derived columns added first)."""
    return validate(suite.prepared(df), suite.name, suite.expectations, key=suite.key, **options)


def validate(
    df: DataFrame,
    suite_name: str,
    expectations: Sequence[Any],
    *,
    key: Sequence[str] = (),
    details: str = "failures",
) -> QualityResult:
    """Run `expectations` (GX expectation objects) on `df` in an ephemeral GX context.

    details="failures" (default): a first pass in BOOLEAN_ONLY decides success
    (GX skips the per-expectation Spark jobs that collect unexpected values), a
    second pass computes what was observed for the expectations that failed
    (counts, and the `key` columns of a few offending rows) and for the
    aggregate ones (rates, counts: one cheap job). On a passing batch that is
    about 40% of the Spark jobs of one BASIC pass.
    details="all": one pass that observes every expectation.
    """
    started = time.perf_counter()
    indexed = [_indexed(e, i) for i, e in enumerate(expectations)]
    detailed = _detailed_format([c for c in key if c in df.columns])
    if details == "all":
        outcomes = _run(df, suite_name, indexed, detailed)
    else:
        first = _run(df, suite_name, indexed, "BOOLEAN_ONLY")
        wanted = [e for e in indexed if not first[_index(e)].success or not _row_wise(e)]
        outcomes = {**first, **_run(df, suite_name, wanted, detailed)} if wanted else first
    ordered = tuple(outcomes[i] for i in range(len(indexed)))
    failed = sum(not o.success for o in ordered)
    return QualityResult(
        table=suite_name,
        success=failed == 0,
        evaluated=len(ordered),
        failed=failed,
        outcomes=ordered,
        rows=next((o.observed for o in ordered if o.type == "expect_table_row_count_to_be_between"), None),
        seconds=time.perf_counter() - started,
        validated_at=dt.datetime.now(dt.UTC),
        run_id=uuid.uuid4().hex,
    )


def _detailed_format(key: Sequence[str]) -> str | dict[str, Any]:
    """BASIC (counts and a few unexpected values), or with a key SUMMARY plus
    the key columns of the first offending rows (which row, not just which value)."""
    if not key:
        return "BASIC"
    return {
        "result_format": "SUMMARY", "unexpected_index_column_names": list(key),
        "partial_unexpected_count": _EXAMPLES, "return_unexpected_index_query": False,
    }


def _run(
    df: DataFrame, suite_name: str, expectations: Sequence[Any], result_format: str | dict[str, Any]
) -> dict[int, ExpectationOutcome]:
    """One validation of `df` in a fresh ephemeral context: outcome per expectation index."""
    context = gx.get_context(mode="ephemeral", project_config=_quiet_config())
    key = suite_name.replace("/", "__")
    # persist=False: GX would persist every batch and never release it; the gate materializes it.
    source = context.data_sources.add_spark(name="staged", persist=False)
    batch = source.add_dataframe_asset(name=key).add_batch_definition_whole_dataframe(name="whole")
    # Fresh copies each pass: GX binds an expectation (id, save callback) to the suite it joins.
    suite = context.suites.add(gx.ExpectationSuite(name=key, expectations=[copy.copy(e) for e in expectations]))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=key, data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": df}, result_format=result_format)
    outcomes = {_index(r.expectation_config): _outcome(r) for r in result.results}
    missing = {_index(e) for e in expectations} - outcomes.keys()
    if missing:
        raise RuntimeError(f"GX returned no result for expectations {sorted(missing)} of {suite_name}")
    return outcomes


def _indexed(expectation: Any, index: int) -> Any:
    """A copy of `expectation` tagged with its position, by which results are matched back."""
    tagged = copy.copy(expectation)
    tagged.meta = {**(expectation.meta or {}), _INDEX: index}
    return tagged


def _index(expectation_or_config: Any) -> int:
    return int(expectation_or_config.meta[_INDEX])


def _row_wise(expectation: Any) -> bool:
    """Expectations judged row by row, whose details cost extra Spark jobs."""
    return isinstance(expectation, (ColumnMapExpectation, MulticolumnMapExpectation, ColumnPairMapExpectation))


def _quiet_config() -> DataContextConfig:
    return DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )


def _outcome(result: Any) -> ExpectationOutcome:
    config = result.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column") or (",".join(kwargs["column_list"]) if kwargs.get("column_list") else None)
    text = config.description or f"{config.type}({column or ''})"
    return ExpectationOutcome(
        type=config.type, column=column, success=bool(result.success), observed=_observed(result), text=text
    )


def _observed(result: Any) -> Any:
    """What the expectation saw, small: the observed value of an aggregate, or
    the unexpected count, share and a few examples of a row-wise one."""
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return {"error": str(info.get("exception_message", "")).splitlines()[0][:300]}
    r = result.result or {}
    if "observed_value" in r:
        return r["observed_value"]
    if "unexpected_count" in r:
        # Nulls are skipped by most row-wise expectations: count against the values judged.
        missing = r.get("missing_count")
        judged = (r.get("element_count") or 0) - (missing or 0)
        return {
            "unexpected": r["unexpected_count"],
            "of": judged,
            "judged": "rows" if missing is None else "non-null values",
            "percent": round(100.0 * r["unexpected_count"] / judged, 3) if judged else 0.0,
            "examples": list(
                r.get("partial_unexpected_index_list") or r.get("unexpected_index_list") or r.get("partial_unexpected_list") or []
            )[:_EXAMPLES],
        }
    return r or None


def _observed_text(observed: Any) -> str:
    if isinstance(observed, dict) and {"unexpected", "of"} <= observed.keys():
        text = f"{observed['unexpected']} of {observed['of']} {observed['judged']} ({observed['percent']:g}%) unexpected"
        examples = "; ".join(_example_text(e) for e in observed["examples"])
        return text + (f", e.g. {examples}" if observed["unexpected"] and examples else "")
    if isinstance(observed, dict) and "error" in observed:
        return f"error: {observed['error']}"
    if isinstance(observed, float):
        return f"observed {observed:.6g}"
    return f"observed {json.dumps(observed, default=str)}"


def _example_text(example: Any) -> str:
    if isinstance(example, dict):  # an offending row: its key columns and the judged value(s)
        return ", ".join(f"{k}={v}" for k, v in example.items() if not k.startswith("dq_"))
    return str(example)
