"""Data-quality suites, one per published table: what a staged batch must satisfy
before write-audit-publish makes it visible.

Declarations only: each builder returns a `Suite` of Great Expectations 1.x
expectation objects plus the derived columns some of them read (Spark SQL
expressions, added to the staged DataFrame before validation: GE has no
expectation for "an array is sorted", so `dq_is_sorted` computes it and a
plain in-set expectation checks it). Nothing here opens a session or reads data,
except `trailing_rates`, which computes the history that rate bands come from.

Rates (label rate, noise rate, score coverage) are held to bands derived from
the same rate on the previous published dates (`rate_band`): the prediction
interval of one more day given the trailing days' mean and spread (Student t,
so a short history gives a wide band by itself), never narrower than the
day's binomial sampling noise. Without enough history a band is the wide
sanity interval (for example a label rate strictly between 0 and 1). No band
is a constant fitted to the synthetic generator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import great_expectations.expectations as gxe
from great_expectations.expectations.expectation import BatchExpectation
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from scipy.stats import t as student_t

from pipelines.bse.signatures import USER_BSE_SCHEMA
from pipelines.clickstream.denoise import NoiseReason
from pipelines.clickstream.schema import BRONZE_EVENTS_SCHEMA, EventType
from pipelines.clickstream.sessions import DERIVED, OBSERVED
from pipelines.examples.training_examples import LABEL_MODES
from pipelines.lakehouse.tables import (
    BRONZE_EVENTS,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    SCORES_CTR,
    SILVER_EVENTS,
)
from pipelines.scoring.candidates import CANDIDATE_SOURCES
from pipelines.sequences.behavior_sequences import BEHAVIORS

# Derived columns carry this prefix; the schema expectation ignores them.
DERIVED_PREFIX = "dq_"
_DAY_MS = 86_400_000


# --------------------------------------------------------------------------- schema


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


def schema_of(struct: T.StructType) -> dict[str, str]:
    return {f.name: f.dataType.simpleString() for f in struct.fields}


# --------------------------------------------------------------------------- suites


@dataclasses.dataclass(frozen=True)
class Suite:
    """A table's expectations and the derived columns (name -> Spark SQL
    expression, applied in order, each may read the ones before) they read."""

    name: str
    expectations: tuple[Any, ...]
    derived: Mapping[str, str] = dataclasses.field(default_factory=dict)
    # Columns that name a row in failure reports (not necessarily unique in a bad batch).
    key: tuple[str, ...] = ()
    # An empty batch is published unchecked (a day without impressions has no examples).
    allow_empty: bool = False

    def prepared(self, df: DataFrame) -> DataFrame:
        """`df` with the derived columns the expectations read."""
        for name, expression in self.derived.items():
            df = df.withColumn(name, F.expr(expression))
        return df


@dataclasses.dataclass(frozen=True)
class DayRate:
    """A rate on one published date and the rows it is a mean over."""

    day: dt.date
    rate: float
    rows: int


@dataclasses.dataclass(frozen=True)
class Band:
    """[low, high] (bounds excluded where strict) and where it came from."""

    low: float
    high: float
    strict_low: bool = False
    strict_high: bool = False
    basis: str = "sanity bounds"


def rate_band(history: Sequence[DayRate], sanity: Band, *, alpha: float = 1e-3, min_days: int = 3) -> Band:
    """The band a rate of the next date should fall in, from its `history`
    (the previous published dates, which passed their own gates): the
    (1 - alpha) prediction interval of one more day, mean +- t(n-1) * sd *
    sqrt(1 + 1/n) over the n daily rates, so that few days of history give a
    wide band on their own and a steady rate a narrow one. The sd is at least
    the binomial sampling noise sqrt(p(1 - p) / rows) of the smallest day.
    Clipped to `sanity`; `sanity` itself with fewer than `min_days` days."""
    usable = sorted((h for h in history if h.rows > 0 and not math.isnan(h.rate)), key=lambda h: h.day)
    if len(usable) < max(min_days, 2):
        return dataclasses.replace(sanity, basis=f"sanity bounds ({len(usable)} days of history < {max(min_days, 2)})")
    rates = [h.rate for h in usable]
    n, mean = len(rates), statistics.fmean(rates)
    noise = math.sqrt(max(mean * (1 - mean), 0.0) / min(h.rows for h in usable))
    sd = max(statistics.stdev(rates), noise)
    half = float(student_t.ppf(1 - alpha / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    low, high = mean - half, mean + half
    clipped_low, clipped_high = low <= sanity.low, high >= sanity.high
    return Band(
        low=sanity.low if clipped_low else low,
        high=sanity.high if clipped_high else high,
        strict_low=sanity.strict_low and clipped_low,
        strict_high=sanity.strict_high and clipped_high,
        basis=f"{n} days {usable[0].day}..{usable[-1].day}: mean {mean:.4g}, sd {sd:.3g}, {1 - alpha:.1%} prediction interval",
    )


def trailing_rates(
    published: DataFrame, date_column: str, rate_expression: str, first: dt.date, last: dt.date
) -> list[DayRate]:
    """Per date of `published` in [first, last]: the mean of `rate_expression`
    (a 0/1 Spark SQL expression, null where the row does not count) and how many
    rows it averages. One row per date comes back to the driver."""
    rate = F.expr(rate_expression)
    rows = (
        published.where(F.col(date_column).between(F.lit(first), F.lit(last)))
        .groupBy(date_column)
        .agg(F.avg(rate).alias("rate"), F.count(rate).alias("rows"))
        .collect()
    )
    return sorted(
        (DayRate(r[date_column], float(r["rate"]), int(r["rows"])) for r in rows if r["rows"]), key=lambda d: d.day
    )


# The rates that bands are kept on, as Spark SQL over the table's own rows, so
# that the history (trailing_rates) and the check measure the same thing.
NOISE_RATE = f"CASE WHEN event_type = '{EventType.CLICK.value}' THEN CAST(noise_reason IS NOT NULL AS INT) END"
LABEL_RATE = "label"
SCORE_COVERAGE = "dq_candidate_scored"


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


def _mean_in(column: str, band: Band, description: str, history: Sequence[DayRate]) -> Any:
    return ExpectColumnRateToBeBetween(
        column=column, min_value=band.low, max_value=band.high, strict_min=band.strict_low, strict_max=band.strict_high,
        rate_required=any(h.rows for h in history), description=f"{description} in {_band_text(band)} ({band.basis})",
        catch_exceptions=True,
    )


def volume_band(history: Sequence[DayRate], *, alpha: float = 1e-3, min_days: int = 3) -> Band:
    """The band the row count of the next date should fall in, from the row
    counts of the previous published dates (`DayRate.rows`): the (1 - alpha)
    prediction interval of one more day's log rows, mean +- t(n-1) * sd *
    sqrt(1 + 1/n), on the log scale since volumes vary by factors; the sd is at
    least the Poisson noise of the log of the smallest day's count. With fewer
    than `min_days` days of history, no bound: a new feed may start small."""
    usable = sorted((h for h in history if h.rows > 0), key=lambda h: h.day)
    if len(usable) < max(min_days, 2):
        return Band(0, math.inf, basis=f"no bound: {len(usable)} days of history < {max(min_days, 2)}")
    logs = [math.log(h.rows) for h in usable]
    n, mean = len(logs), statistics.fmean(logs)
    sd = max(statistics.stdev(logs), 1 / math.sqrt(min(h.rows for h in usable)))
    half = float(student_t.ppf(1 - alpha / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    return Band(
        max(1, math.floor(math.exp(mean - half))), math.ceil(math.exp(mean + half)),
        basis=f"{n} days {usable[0].day}..{usable[-1].day}: median {math.exp(statistics.median(logs)):,.0f} rows, "
              f"sd of log rows {sd:.3g}, {1 - alpha:.1%} prediction interval",
    )


def _rows_on(column: str, newest: dt.date, history: Sequence[DayRate]) -> tuple[dict[str, str], Any]:
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


def _band_text(band: Band) -> str:
    return f"{'(' if band.strict_low else '['}{band.low:.4g}, {band.high:.4g}{')' if band.strict_high else ']'}"


def _true(column: str, description: str) -> Any:
    return gxe.ExpectColumnValuesToBeInSet(column=column, value_set=[True], description=description, catch_exceptions=True)


def _not_null(*columns: str) -> list[Any]:
    return [
        gxe.ExpectColumnValuesToNotBeNull(column=c, description=f"{c} is never null", catch_exceptions=True)
        for c in columns
    ]


def _unique(*columns: str) -> Any:
    if len(columns) == 1:
        return gxe.ExpectColumnValuesToBeUnique(
            column=columns[0], description=f"{columns[0]} is unique", catch_exceptions=True
        )
    return gxe.ExpectCompoundColumnsToBeUnique(
        column_list=list(columns), description=f"({', '.join(columns)}) is unique", catch_exceptions=True
    )


def _in_set(column: str, values: Sequence[Any]) -> Any:
    return gxe.ExpectColumnValuesToBeInSet(
        column=column, value_set=list(values), description=f"{column} in {sorted(values)}", catch_exceptions=True
    )


def _between(column: str, low: float | None, high: float | None) -> Any:
    text = {(True, True): f"{low} <= {column} <= {high}", (True, False): f"{column} >= {low}", (False, True): f"{column} <= {high}"}
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, min_value=low, max_value=high,
        description=text[(low is not None, high is not None)], catch_exceptions=True,
    )


def _schema(struct_or_map: T.StructType | Mapping[str, str]) -> Any:
    schema = schema_of(struct_or_map) if isinstance(struct_or_map, T.StructType) else dict(struct_or_map)
    return ExpectTableSchemaToEqual(columns=schema, description="columns and types as published", catch_exceptions=True)


def _rows() -> Any:
    return gxe.ExpectTableRowCountToBeBetween(min_value=1, description="the batch is not empty", catch_exceptions=True)


def _check(expression: str) -> str:
    """A derived yes/no column: null (an operand missing) counts as no, since an
    in-set expectation skips nulls."""
    return f"coalesce({expression}, false)"


def _checks(expressions: Mapping[str, str]) -> dict[str, str]:
    return {name: _check(expression) for name, expression in expressions.items()}


def _sorted(array: str) -> str:
    # Element-wise comparison of the array with its sorted copy; an empty array is sorted.
    return f"array_sort({array}) = {array}"


# The date a millisecond timestamp falls on, as ingest computes event_date
# (to_date of timestamp_millis, in the session time zone).
def _day_of(ms: str) -> str:
    return f"to_date(timestamp_millis({ms}))"


# --- bronze/events

def bronze_events_suite(max_lateness_days: int, max_clock_skew_minutes: int, newest: dt.date | None = None,
                        volume_history: Sequence[DayRate] = ()) -> Suite:
    """Typed, parsed landing records: required fields present, known event
    types, no negative dwell, event time inside the window ingest accepts for
    the landing date, and (with `newest`, a landing date) as many rows as the
    source's previous landing dates let expect. Duplicates are allowed
    (at-least-once delivery; clean removes them)."""
    start_ms = "unix_millis(to_timestamp(landing_date))"
    oldest_ms = f"{start_ms} - {max_lateness_days * _DAY_MS}"
    newest_ms = f"{start_ms} + {_DAY_MS + max_clock_skew_minutes * 60_000}"
    derived = _checks({
        "dq_ts_accepted": f"ts BETWEEN {oldest_ms} AND {newest_ms}",
        "dq_event_date_of_ts": f"event_date = {_day_of('ts')} AND event_ts = timestamp_millis(ts)",
    })
    volume = []
    if newest is not None:
        rows, expectation = _rows_on("landing_date", newest, volume_history)
        derived, volume = derived | rows, [expectation]
    return Suite(BRONZE_EVENTS.name, (
        _schema(BRONZE_EVENTS_SCHEMA),
        _rows(),
        *_not_null("event_id", "event_type", "user_id", "item_id", "ts", "event_date", "source_file", "landing_date"),
        _in_set("event_type", [t.value for t in EventType]),
        _between("dwell_ms", 0, None),
        _true("dq_ts_accepted", f"ts within [landing_date - {max_lateness_days} d, landing_date + 1 d + {max_clock_skew_minutes} min]"),
        _true("dq_event_date_of_ts", "event_ts and event_date follow ts"),
        *volume,
    ), derived, ("event_id", "landing_date"))


# --- silver/events

SILVER_SCHEMA = {
    "event_id": "string", "event_type": "string", "user_id": "bigint", "item_id": "bigint", "ts": "bigint",
    "event_ts": "timestamp", "category_id": "int", "impression_id": "string", "position": "int", "dwell_ms": "bigint",
    "dwell_source": "string", "content_length": "int", "session_id": "string", "noise_reason": "string",
    "source": "string", "source_file": "string", "landing_date": "date", "ingest_ts": "timestamp", "event_date": "date",
}


def _on_date(expression: str, column: str, newest: dt.date | None) -> str:
    """`expression` on the rows of `newest` only (null elsewhere, which a mean skips):
    a batch that rewrites a look-back window is judged by its new date, which
    the older dates of the window would otherwise dilute."""
    return expression if newest is None else f"CASE WHEN {column} = DATE'{newest}' THEN {expression} END"


def silver_events_suite(noise_history: Sequence[DayRate] = (), newest: dt.date | None = None,
                        volume_history: Sequence[DayRate] = ()) -> Suite:
    """Deduplicated, sessionized, flagged events: one row per event_id, dwell
    never negative and only on clicks, noise reasons known and only on clicks,
    the share of clicks flagged as noise within the band of the previous
    dates (no bound without history: a small day may well be all noise), and
    the newest date's rows within the volume band of the previous dates."""
    clicks_only = f"event_type = '{EventType.CLICK.value}' OR (noise_reason IS NULL AND dwell_ms IS NULL AND dwell_source IS NULL)"
    derived = {
        **_checks({"dq_click_fields_on_clicks": clicks_only, "dq_event_date_of_ts": f"event_date = {_day_of('ts')}"}),
        "dq_noise": _on_date(NOISE_RATE, "event_date", newest),
    }
    volume = []
    if newest is not None:
        rows, expectation = _rows_on("event_date", newest, volume_history)
        derived, volume = derived | rows, [expectation]
    band = rate_band(noise_history, Band(0.0, 1.0))
    return Suite(SILVER_EVENTS.name, (
        _schema(SILVER_SCHEMA),
        _rows(),
        *_not_null("event_id", "event_type", "user_id", "item_id", "ts", "session_id", "event_date"),
        _unique("event_id"),
        _in_set("event_type", [t.value for t in EventType]),
        _between("dwell_ms", 0, None),
        _in_set("dwell_source", [OBSERVED, DERIVED]),
        _in_set("noise_reason", [r.value for r in NoiseReason]),
        _true("dq_click_fields_on_clicks", "noise_reason, dwell_ms and dwell_source only on clicks"),
        _true("dq_event_date_of_ts", "event_date is the date of ts"),
        _mean_in("dq_noise", band, "noise rate of clicks" + (f" of {newest}" if newest else ""), noise_history),
        *volume,
    ), derived, ("event_id", "event_date"))


# --- gold/user_sequences

SEQUENCES_SCHEMA = {
    "user_id": "bigint", "item_ids": "array<bigint>", "category_ids": "array<int>", "timestamps": "array<bigint>",
    "dwell_ms": "array<bigint>", "actions": "array<string>", "length": "int", "as_of_date": "date",
}


def user_sequences_suite(max_len: int) -> Suite:
    """One snapshot per (user_id, as_of_date): parallel arrays of equal length,
    1 <= length <= max_len, timestamps non-decreasing (newest last) and none
    after the as-of date, actions that are behaviors, no negative dwell."""
    actions = ", ".join(f"'{b.value}'" for b in BEHAVIORS)
    derived = _checks({
        "dq_aligned": " AND ".join(f"size({a}) = length" for a in ("item_ids", "category_ids", "timestamps", "dwell_ms", "actions")),
        "dq_is_sorted": _sorted("timestamps"),
        "dq_before_end_of_as_of": f"size(timestamps) = 0 OR {_day_of('element_at(timestamps, -1)')} <= as_of_date",
        "dq_actions_are_behaviors": f"forall(actions, a -> a IN ({actions}))",
        "dq_dwell_not_negative": "forall(dwell_ms, d -> d IS NULL OR d >= 0)",
    })
    return Suite(GOLD_USER_SEQUENCES.name, (
        _schema(SEQUENCES_SCHEMA),
        _rows(),
        *_not_null("user_id", "as_of_date"),
        _unique("user_id", "as_of_date"),
        _between("length", 1, max_len),
        _true("dq_aligned", "item_ids, category_ids, timestamps, dwell_ms, actions all of size length"),
        _true("dq_is_sorted", "timestamps non-decreasing (newest last)"),
        _true("dq_before_end_of_as_of", "no behavior after the as-of date"),
        _true("dq_actions_are_behaviors", f"actions in ({actions})"),
        _true("dq_dwell_not_negative", "no negative dwell in a sequence"),
    ), derived, ("user_id", "as_of_date"))


# --- gold/user_bse

USER_BSE_COLUMNS = {**schema_of(USER_BSE_SCHEMA), "version": "string", "projection_sha256": "string"}


def user_bse_suite(signatures: int, bits: int, embedding_dim: int) -> Suite:
    """Per (user, as_of_date, version, hash_index, code) one bucket: index and
    code in range, count >= 1, a vector of embedding_dim floats; every user has
    all `signatures` hash functions and the same number of behaviors under
    each (each behavior is hashed by every function); one projection."""
    user = "PARTITION BY user_id, as_of_date, version"
    derived = {
        "dq_hash_total": f"sum(`count`) OVER ({user}, hash_index)",
        **_checks({
            "dq_vector_size": f"size(vector_sum) = {embedding_dim}",
            "dq_hashes_consistent": (
                f"size(collect_set(hash_index) OVER ({user})) = {signatures} "
                f"AND min(dq_hash_total) OVER ({user}) = max(dq_hash_total) OVER ({user})"
            ),
        }),
    }
    return Suite(GOLD_USER_BSE.name, (
        _schema(USER_BSE_COLUMNS),
        _rows(),
        *_not_null("user_id", "as_of_date", "version", "vector_sum"),
        _unique("user_id", "as_of_date", "version", "hash_index", "code"),
        _between("hash_index", 0, signatures - 1),
        _between("code", 0, (1 << bits) - 1),
        _between("count", 1, None),
        _true("dq_vector_size", f"vector_sum has {embedding_dim} floats"),
        _true("dq_hashes_consistent", f"each user has all {signatures} hash functions, each hashing every behavior once"),
        gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="projection_sha256", min_value=1, max_value=1, description="one projection", catch_exceptions=True
        ),
    ), derived, ("user_id", "as_of_date", "hash_index", "code"))


# --- gold/training_examples

EXAMPLES_SCHEMA = {
    "item_id": "bigint", "features_as_of": "date", "user_id": "bigint", "event_date": "date", "impression_id": "string",
    "position": "int", "category_id": "int", "content_length": "int", "source": "string", "impression_ts": "bigint",
    "label": "int", "label_mode": "string", "long_item_ids": "array<bigint>", "long_category_ids": "array<int>",
    "long_timestamps": "array<bigint>", "short_item_ids": "array<bigint>", "short_category_ids": "array<int>",
    **{f"{who}_{m}": t for who in ("user", "item") for m, t in (
        ("impressions", "bigint"), ("clicks", "bigint"), ("actions", "bigint"), ("ctr", "double"), ("dwell_mean_ms", "double"))},
    "long_bse": "array<float>", "bse_version": "string", "bse_trained_through": "date", "bse_projection_sha256": "string",
}


def training_examples_suite(train_len: int, short_len: int, label_history: Sequence[DayRate] = (),
                            newest: dt.date | None = None, volume_history: Sequence[DayRate] = ()) -> Suite:
    """One row per (user, impression, position, item, date) with a 0/1 label
    whose mean on the newest date is within the band of the previous dates'
    (strictly between 0 and 1 once they had both labels); features as of the day before, with no behavior on or after the example's
    date (no leakage), BSE sums from embeddings trained on earlier dates only,
    sequences sorted and capped. An empty batch passes."""
    derived = _checks({
        "dq_features_day_before": "features_as_of = date_sub(event_date, 1)",
        "dq_no_future_behavior": f"size(long_timestamps) = 0 OR {_day_of('element_at(long_timestamps, -1)')} < event_date",
        "dq_is_sorted": _sorted("long_timestamps"),
        "dq_capped_and_aligned": (
            f"size(long_item_ids) <= {train_len} AND size(short_item_ids) <= {short_len} "
            "AND size(long_category_ids) = size(long_item_ids) AND size(long_timestamps) = size(long_item_ids) "
            "AND size(short_category_ids) = size(short_item_ids)"
        ),
        "dq_shown_on_date": f"{_day_of('impression_ts')} = event_date",
        "dq_bse_before_date": "bse_version IS NULL OR bse_trained_through IS NULL OR bse_trained_through < event_date",
        "dq_bse_published": "(long_bse IS NULL) = (bse_version IS NULL)",
    }) | {"dq_label": _on_date(LABEL_RATE, "event_date", newest)}
    volume = []
    if newest is not None:
        rows, expectation = _rows_on("event_date", newest, volume_history)
        derived, volume = derived | rows, [expectation]
    # Once the previous days had both labels, a day with one label only is a
    # broken feed (no clicks logged, or no impressions); without such history a
    # small day may well have no click at all.
    seen = [h for h in label_history if h.rows]
    both_labels = bool(seen) and all(0 < h.rate < 1 for h in seen)
    band = rate_band(label_history, Band(0.0, 1.0, strict_low=both_labels, strict_high=both_labels))
    return Suite(GOLD_TRAINING_EXAMPLES.name, (
        _schema(EXAMPLES_SCHEMA),
        *_not_null("user_id", "impression_id", "item_id", "event_date", "features_as_of", "label", "label_mode"),
        _unique("user_id", "impression_id", "position", "item_id", "event_date"),
        _in_set("label", [0, 1]),
        _in_set("label_mode", list(LABEL_MODES)),
        # Not <= 1: a click may come without a logged impression (the demo has an item_ctr of 2).
        _between("user_ctr", 0, None),
        _between("item_ctr", 0, None),
        _true("dq_features_day_before", "features_as_of is the day before event_date"),
        _true("dq_no_future_behavior", "no history behavior on or after the example's date"),
        _true("dq_is_sorted", "long_timestamps non-decreasing"),
        _true("dq_capped_and_aligned", f"long <= {train_len}, short <= {short_len}, id/category/timestamp arrays aligned"),
        _true("dq_shown_on_date", "impression_ts on event_date"),
        _true("dq_bse_before_date", "the embeddings behind the BSE sums were trained on dates before the example's"),
        _true("dq_bse_published", "BSE sums carry the embedding version they were published under"),
        _mean_in("dq_label", band, "label rate" + (f" of {newest}" if newest else ""), label_history),
        *volume,
    ), derived, ("user_id", "impression_id", "position", "item_id", "event_date"), allow_empty=True)


# --- scores/ctr

SCORES_SCHEMA = {
    "user_id": "bigint", "item_id": "bigint", "candidate_source": "string", "score": "double",
    "model_version": "string", "score_date": "date",
}
SCORE_KEY = ["user_id", "item_id", "score_date"]


def scored_candidates(scores: DataFrame, candidates: DataFrame) -> DataFrame:
    """The scores of a batch lined up with the candidates of the same dates (full
    outer join on user, item and date) for the coverage checks: the scores'
    columns plus dq_is_candidate (the row has a candidate; false for a score of
    a pair nobody asked for), dq_has_score (the row has a score) and dq_candidate_scored (1/0 per candidate, null
    for a score without a candidate). Validate this frame with scores_ctr_suite."""
    # Candidates are distinct per (user, item, date) by construction (gold/candidates).
    asked = candidates.select(*SCORE_KEY).withColumn("_candidate", F.lit(True))
    joined = scores.withColumn("_scored", F.lit(True)).join(asked, SCORE_KEY, "full_outer")
    return joined.select(
        *scores.columns,
        F.coalesce("_candidate", F.lit(False)).alias("dq_is_candidate"),
        F.coalesce("_scored", F.lit(False)).alias("dq_has_score"),
        F.when(F.col("_candidate"), F.col("_scored").isNotNull().cast("int")).alias(SCORE_COVERAGE),
    )


def scores_ctr_suite(coverage_history: Sequence[DayRate] = (), with_candidates: bool = True) -> Suite:
    """One probability per (user, item, date) from one model version; with the
    candidates (validate `scored_candidates(...)`), every score is for a
    candidate and the share of candidates scored is within the band of the
    previous dates (sanity: above 0)."""
    expectations = [
        _schema(SCORES_SCHEMA),
        _rows(),
        *_not_null("user_id", "item_id", "score_date"),
        *([] if with_candidates else _not_null("score")),
        _unique(*SCORE_KEY),
        _between("score", 0, 1),
        _in_set("candidate_source", list(CANDIDATE_SOURCES)),
        gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="model_version", min_value=1, max_value=1, description="one model version", catch_exceptions=True
        ),
    ]
    if with_candidates:
        band = rate_band(coverage_history, Band(0.0, 1.0, strict_low=True))
        derived = {"dq_score_present": _check("NOT dq_has_score OR score IS NOT NULL")}
        expectations += [
            _true("dq_score_present", "score is never null"),
            _true("dq_is_candidate", "every score is for a candidate"),
            _mean_in(SCORE_COVERAGE, band, "share of candidates scored", coverage_history),
        ]
    return Suite(SCORES_CTR.name, tuple(expectations), derived if with_candidates else {}, tuple(SCORE_KEY))
