"""Data-quality suites, one per published table: what a staged batch must satisfy
before write-audit-publish makes it visible.

Declarations only: each builder returns a `Suite` of Great Expectations 1.x
expectation objects (pipelines.quality.expectations) plus the derived columns
some of them read, with the table's schema and key from the catalog
(pipelines.lakehouse.tables) and its rates and volume held to bands of the
previous published dates (pipelines.quality.bands). Nothing here opens a
session or reads data.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import great_expectations.expectations as gxe
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.denoise import NoiseReason
from pipelines.clickstream.schema import EventType
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
from pipelines.quality.bands import Band, DayRate, rate_band
from pipelines.quality.expectations import (
    all_true,
    between,
    check,
    checks,
    day_of,
    in_set,
    mean_in,
    not_empty,
    not_null,
    rows_on,
    sorted_array,
    table_schema,
    unique,
)
from pipelines.scoring.candidates import CANDIDATE_SOURCES
from pipelines.sequences.behavior_sequences import BEHAVIORS

_DAY_MS = 86_400_000


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


# The rates that bands are kept on, as Spark SQL over the table's own rows, so
# that the history (trailing_rates) and the check measure the same thing.
NOISE_RATE = f"CASE WHEN event_type = '{EventType.CLICK.value}' THEN CAST(noise_reason IS NOT NULL AS INT) END"
LABEL_RATE = "label"
SCORE_COVERAGE = "dq_candidate_scored"


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
    derived = checks({
        "dq_ts_accepted": f"ts BETWEEN {oldest_ms} AND {newest_ms}",
        "dq_event_date_of_ts": f"event_date = {day_of('ts')} AND event_ts = timestamp_millis(ts)",
    })
    volume = []
    if newest is not None:
        rows, expectation = rows_on("landing_date", newest, volume_history)
        derived, volume = derived | rows, [expectation]
    return Suite(BRONZE_EVENTS.name, (
        table_schema(BRONZE_EVENTS),
        not_empty(),
        *not_null("event_id", "event_type", "user_id", "item_id", "ts", "event_date", "source_file", "landing_date"),
        in_set("event_type", [t.value for t in EventType]),
        between("dwell_ms", 0, None),
        all_true("dq_ts_accepted", f"ts within [landing_date - {max_lateness_days} d, landing_date + 1 d + {max_clock_skew_minutes} min]"),
        all_true("dq_event_date_of_ts", "event_ts and event_date follow ts"),
        *volume,
    ), derived, BRONZE_EVENTS.key)


# --- silver/events

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
        **checks({"dq_click_fields_on_clicks": clicks_only, "dq_event_date_of_ts": f"event_date = {day_of('ts')}"}),
        "dq_noise": _on_date(NOISE_RATE, "event_date", newest),
    }
    volume = []
    if newest is not None:
        rows, expectation = rows_on("event_date", newest, volume_history)
        derived, volume = derived | rows, [expectation]
    band = rate_band(noise_history, Band(0.0, 1.0))
    return Suite(SILVER_EVENTS.name, (
        table_schema(SILVER_EVENTS),
        not_empty(),
        *not_null("event_id", "event_type", "user_id", "item_id", "ts", "session_id", "event_date"),
        unique("event_id"),
        in_set("event_type", [t.value for t in EventType]),
        between("dwell_ms", 0, None),
        in_set("dwell_source", [OBSERVED, DERIVED]),
        in_set("noise_reason", [r.value for r in NoiseReason]),
        all_true("dq_click_fields_on_clicks", "noise_reason, dwell_ms and dwell_source only on clicks"),
        all_true("dq_event_date_of_ts", "event_date is the date of ts"),
        mean_in("dq_noise", band, "noise rate of clicks" + (f" of {newest}" if newest else ""), noise_history),
        *volume,
    ), derived, SILVER_EVENTS.key)


# --- gold/user_sequences

def user_sequences_suite(max_len: int) -> Suite:
    """One snapshot per (user_id, as_of_date): parallel arrays of equal length,
    1 <= length <= max_len, timestamps non-decreasing (newest last) and none
    after the as-of date, actions that are behaviors, no negative dwell."""
    actions = ", ".join(f"'{b.value}'" for b in BEHAVIORS)
    derived = checks({
        "dq_aligned": " AND ".join(f"size({a}) = length" for a in ("item_ids", "category_ids", "timestamps", "dwell_ms", "actions")),
        "dq_is_sorted": sorted_array("timestamps"),
        "dq_before_end_of_as_of": f"size(timestamps) = 0 OR {day_of('element_at(timestamps, -1)')} <= as_of_date",
        "dq_actions_are_behaviors": f"forall(actions, a -> a IN ({actions}))",
        "dq_dwell_not_negative": "forall(dwell_ms, d -> d IS NULL OR d >= 0)",
    })
    return Suite(GOLD_USER_SEQUENCES.name, (
        table_schema(GOLD_USER_SEQUENCES),
        not_empty(),
        *not_null("user_id", "as_of_date"),
        unique(*GOLD_USER_SEQUENCES.key),
        between("length", 1, max_len),
        all_true("dq_aligned", "item_ids, category_ids, timestamps, dwell_ms, actions all of size length"),
        all_true("dq_is_sorted", "timestamps non-decreasing (newest last)"),
        all_true("dq_before_end_of_as_of", "no behavior after the as-of date"),
        all_true("dq_actions_are_behaviors", f"actions in ({actions})"),
        all_true("dq_dwell_not_negative", "no negative dwell in a sequence"),
    ), derived, GOLD_USER_SEQUENCES.key)


# --- gold/user_bse

def user_bse_suite(signatures: int, bits: int, embedding_dim: int) -> Suite:
    """Per (user, as_of_date, version, hash_index, code) one bucket: index and
    code in range, count >= 1, a vector of embedding_dim floats; every user has
    all `signatures` hash functions and the same number of behaviors under
    each (each behavior is hashed by every function); one projection."""
    user = "PARTITION BY user_id, as_of_date, version"
    derived = {
        "dq_hash_total": f"sum(`count`) OVER ({user}, hash_index)",
        **checks({
            "dq_vector_size": f"size(vector_sum) = {embedding_dim}",
            "dq_hashes_consistent": (
                f"size(collect_set(hash_index) OVER ({user})) = {signatures} "
                f"AND min(dq_hash_total) OVER ({user}) = max(dq_hash_total) OVER ({user})"
            ),
        }),
    }
    return Suite(GOLD_USER_BSE.name, (
        table_schema(GOLD_USER_BSE),
        not_empty(),
        *not_null("user_id", "as_of_date", "version", "vector_sum"),
        unique(*GOLD_USER_BSE.key),
        between("hash_index", 0, signatures - 1),
        between("code", 0, (1 << bits) - 1),
        between("count", 1, None),
        all_true("dq_vector_size", f"vector_sum has {embedding_dim} floats"),
        all_true("dq_hashes_consistent", f"each user has all {signatures} hash functions, each hashing every behavior once"),
        gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="projection_sha256", min_value=1, max_value=1, description="one projection", catch_exceptions=True
        ),
    ), derived, ("user_id", "as_of_date", "hash_index", "code"))


# --- gold/training_examples

def training_examples_suite(train_len: int, short_len: int, label_history: Sequence[DayRate] = (),
                            newest: dt.date | None = None, volume_history: Sequence[DayRate] = ()) -> Suite:
    """One row per (user, impression, position, item, date) with a 0/1 label
    whose mean on the newest date is within the band of the previous dates'
    (strictly between 0 and 1 once they had both labels); features as of the day before, with no behavior on or after the example's
    date (no leakage), BSE sums from embeddings trained on earlier dates only,
    sequences sorted and capped. An empty batch passes."""
    derived = checks({
        "dq_features_day_before": "features_as_of = date_sub(event_date, 1)",
        "dq_no_future_behavior": f"size(long_timestamps) = 0 OR {day_of('element_at(long_timestamps, -1)')} < event_date",
        "dq_is_sorted": sorted_array("long_timestamps"),
        "dq_capped_and_aligned": (
            f"size(long_item_ids) <= {train_len} AND size(short_item_ids) <= {short_len} "
            "AND size(long_category_ids) = size(long_item_ids) AND size(long_timestamps) = size(long_item_ids) "
            "AND size(short_category_ids) = size(short_item_ids)"
        ),
        "dq_shown_on_date": f"{day_of('impression_ts')} = event_date",
        "dq_bse_before_date": "bse_version IS NULL OR bse_trained_through IS NULL OR bse_trained_through < event_date",
        "dq_bse_published": "(long_bse IS NULL) = (bse_version IS NULL)",
    }) | {"dq_label": _on_date(LABEL_RATE, "event_date", newest)}
    volume = []
    if newest is not None:
        rows, expectation = rows_on("event_date", newest, volume_history)
        derived, volume = derived | rows, [expectation]
    # Once the previous days had both labels, a day with one label only is a
    # broken feed (no clicks logged, or no impressions); without such history a
    # small day may well have no click at all.
    seen = [h for h in label_history if h.rows]
    both_labels = bool(seen) and all(0 < h.rate < 1 for h in seen)
    band = rate_band(label_history, Band(0.0, 1.0, strict_low=both_labels, strict_high=both_labels))
    return Suite(GOLD_TRAINING_EXAMPLES.name, (
        table_schema(GOLD_TRAINING_EXAMPLES),
        *not_null("user_id", "impression_id", "item_id", "event_date", "features_as_of", "label", "label_mode"),
        unique(*GOLD_TRAINING_EXAMPLES.key),
        in_set("label", [0, 1]),
        in_set("label_mode", list(LABEL_MODES)),
        # Not <= 1: a click may come without a logged impression (the demo has an item_ctr of 2).
        between("user_ctr", 0, None),
        between("item_ctr", 0, None),
        all_true("dq_features_day_before", "features_as_of is the day before event_date"),
        all_true("dq_no_future_behavior", "no history behavior on or after the example's date"),
        all_true("dq_is_sorted", "long_timestamps non-decreasing"),
        all_true("dq_capped_and_aligned", f"long <= {train_len}, short <= {short_len}, id/category/timestamp arrays aligned"),
        all_true("dq_shown_on_date", "impression_ts on event_date"),
        all_true("dq_bse_before_date", "the embeddings behind the BSE sums were trained on dates before the example's"),
        all_true("dq_bse_published", "BSE sums carry the embedding version they were published under"),
        mean_in("dq_label", band, "label rate" + (f" of {newest}" if newest else ""), label_history),
        *volume,
    ), derived, GOLD_TRAINING_EXAMPLES.key, allow_empty=True)


# --- scores/ctr

SCORE_KEY = list(SCORES_CTR.key)


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
        table_schema(SCORES_CTR),
        not_empty(),
        *not_null("user_id", "item_id", "score_date"),
        *([] if with_candidates else not_null("score")),
        unique(*SCORE_KEY),
        between("score", 0, 1),
        in_set("candidate_source", list(CANDIDATE_SOURCES)),
        gxe.ExpectColumnUniqueValueCountToBeBetween(
            column="model_version", min_value=1, max_value=1, description="one model version", catch_exceptions=True
        ),
    ]
    if with_candidates:
        band = rate_band(coverage_history, Band(0.0, 1.0, strict_low=True))
        derived = {"dq_score_present": check("NOT dq_has_score OR score IS NOT NULL")}
        expectations += [
            all_true("dq_score_present", "score is never null"),
            all_true("dq_is_candidate", "every score is for a candidate"),
            mean_in(SCORE_COVERAGE, band, "share of candidates scored", coverage_history),
        ]
    return Suite(SCORES_CTR.name, tuple(expectations), derived if with_candidates else {}, tuple(SCORE_KEY))
