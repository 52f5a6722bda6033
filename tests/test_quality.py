"""Data-quality suites on small staged batches built here, with exact expected outcomes.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines.lakehouse.files import delta_rows
from pipelines.lakehouse.tables import (
    BRONZE_EVENTS,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    SCORES_CTR,
    SILVER_EVENTS,
)
from pipelines.quality import bands, suites
from pipelines.quality.validation import validate, validate_suite

Band, DayRate, rate_band = bands.Band, bands.DayRate, bands.rate_band

DAY = dt.date(2026, 11, 2)
T0 = int(dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC).timestamp() * 1000)


def frame(spark, schema: dict[str, str], rows: list[dict]):
    """A DataFrame of `rows` (dicts, missing keys null) with exactly `schema`."""
    ddl = ", ".join(f"`{name}` {kind}" for name, kind in schema.items())
    return spark.createDataFrame([tuple(r.get(c) for c in schema) for r in rows], ddl)


def silver_rows(clicks: int = 4, noisy: int = 1) -> list[dict]:
    rows = []
    for i in range(clicks):
        ts = T0 + i * 60_000
        common = {
            "user_id": 7, "item_id": 100 + i, "category_id": 3, "impression_id": f"imp-{i}", "position": 0,
            "session_id": f"7-{T0}", "source": "landing", "source_file": "day.jsonl", "landing_date": DAY,
            "ingest_ts": dt.datetime(2026, 11, 3, tzinfo=dt.UTC), "event_date": DAY,
        }
        rows.append({**common, "event_id": f"i{i}", "event_type": "impression", "ts": ts,
                     "event_ts": dt.datetime.fromtimestamp(ts / 1000, dt.UTC)})
        rows.append({**common, "event_id": f"c{i}", "event_type": "click", "ts": ts + 1000,
                     "event_ts": dt.datetime.fromtimestamp((ts + 1000) / 1000, dt.UTC),
                     "dwell_ms": 5_000 + i, "dwell_source": "observed",
                     "noise_reason": "short_dwell" if i < noisy else None})
    return rows


def sequence_row(user_id: int = 1, timestamps: tuple[int, ...] = (T0 - 2 * 3_600_000, T0 - 3_600_000), **changes) -> dict:
    n = len(timestamps)
    row = {
        "user_id": user_id, "item_ids": list(range(10, 10 + n)), "category_ids": [1] * n, "timestamps": list(timestamps),
        "dwell_ms": [1_000] * n, "actions": ["click"] * n, "length": n, "as_of_date": DAY,
    }
    return {**row, **changes}


def example_rows(labels: list[int]) -> list[dict]:
    day = DAY + dt.timedelta(days=1)
    start = int(dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC).timestamp() * 1000)
    return [{
        "item_id": 200 + i, "features_as_of": DAY, "user_id": 7, "event_date": day, "impression_id": "imp-1",
        "position": i, "category_id": 1, "source": "landing", "impression_ts": start, "label": label,
        "label_mode": "impressions", "long_item_ids": [10, 11], "long_category_ids": [1, 1],
        "long_timestamps": [T0, T0 + 5], "short_item_ids": [11], "short_category_ids": [1],
        "user_impressions": 4, "user_clicks": 1, "user_actions": 1, "user_ctr": 0.25,
    } for i, label in enumerate(labels)]


def failed(result) -> list[str]:
    return [o.text for o in result.failures]


# --------------------------------------------------------------------------- rate bands (no Spark)

SANE = Band(0.0, 1.0, strict_low=True, strict_high=True)


def history(rates: list[float], rows: int = 100_000) -> list[DayRate]:
    return [DayRate(DAY - dt.timedelta(days=len(rates) - i), r, rows) for i, r in enumerate(rates)]


def test_without_history_a_band_is_the_sanity_interval():
    assert rate_band([], SANE) == Band(0.0, 1.0, True, True, "sanity bounds (0 days of history < 3)")
    assert rate_band(history([0.1, 0.1]), SANE).low == 0.0


def test_a_steady_history_gives_a_narrow_band_around_its_mean():
    band = rate_band(history([0.10, 0.11, 0.09, 0.10, 0.105, 0.095, 0.10]), SANE)
    assert 0.05 < band.low < 0.09 and 0.11 < band.high < 0.15
    assert not band.strict_low and not band.strict_high
    assert band.basis.startswith("7 days")


def test_a_short_or_noisy_history_widens_the_band_up_to_the_sanity_bounds():
    # The demo's daily noise rates: three days say little, the band is the sanity interval.
    band = rate_band(history([0.227, 0.175, 0.165]), SANE)
    assert (band.low, band.high, band.strict_low, band.strict_high) == (0.0, 1.0, True, True)


def test_a_constant_history_is_held_to_binomial_noise():
    band = rate_band(history([0.5] * 7, rows=10_000), SANE)
    assert band.low < 0.5 < band.high and band.high - band.low < 0.1  # sd floor: sqrt(.25 / 10,000) = 0.005
    full = rate_band(history([1.0] * 7), Band(0.0, 1.0, strict_low=True))
    assert (full.low, full.high) == (1.0, 1.0)


# --------------------------------------------------------------------------- suites on Spark


def test_a_good_silver_batch_passes(spark):
    suite = suites.silver_events_suite(history([0.25] * 7, rows=4))
    result = validate_suite(frame(spark, SILVER_EVENTS.columns, silver_rows()), suite)
    assert result.success, result.summary()
    assert (result.evaluated, result.failed, result.rows) == (len(suite.expectations), 0, 8)
    noise = next(o for o in result.outcomes if o.column == "dq_noise")
    assert noise.observed == pytest.approx(0.25)


def test_negative_dwell_on_half_the_clicks_fails_silver_naming_dwell(spark):
    rows = silver_rows()
    for row in rows:
        if row["event_type"] == "click" and row["event_id"] in ("c1", "c3"):
            row["dwell_ms"] = -row["dwell_ms"]
    result = validate_suite(frame(spark, SILVER_EVENTS.columns, rows), suites.silver_events_suite())
    assert not result.success
    assert failed(result) == ["dwell_ms >= 0"]
    (dwell,) = result.failures
    assert (dwell.type, dwell.column) == ("expect_column_values_to_be_between", "dwell_ms")
    assert dwell.observed["unexpected"] == 2
    assert sorted((e["event_id"], e["dwell_ms"]) for e in dwell.observed["examples"]) == [("c1", -5001), ("c3", -5003)]
    assert "- dwell_ms >= 0: 2 of 4 non-null values (50%) unexpected, e.g. event_id=c" in result.summary()


def test_a_changed_column_type_fails_the_schema(spark):
    schema = {**SILVER_EVENTS.columns, "dwell_ms": "int"}
    result = validate_suite(frame(spark, schema, silver_rows()), suites.silver_events_suite())
    assert failed(result) == ["columns and types as published"]
    assert result.failures[0].observed["mismatched"] == {"dwell_ms": {"expected": "bigint", "observed": "int"}}


def test_a_label_rate_of_zero_fails_the_examples_suite(spark):
    history = [DayRate(DAY - dt.timedelta(days=d), rate, 400) for d, rate in ((3, 0.24), (2, 0.26), (1, 0.25))]
    suite = suites.training_examples_suite(train_len=8, short_len=4, label_history=history, newest=DAY + dt.timedelta(days=1))
    good = validate_suite(frame(spark, GOLD_TRAINING_EXAMPLES.columns, example_rows([1, 0, 0, 0])), suite)
    assert good.success, good.summary()
    bad = validate_suite(frame(spark, GOLD_TRAINING_EXAMPLES.columns, example_rows([0, 0, 0, 0])), suite)
    assert [o.column for o in bad.failures] == ["dq_label"]
    assert bad.failures[0].text.startswith("label rate of 2026-11-03 in (0, 1)") and bad.failures[0].observed == 0.0


def test_bse_sums_from_embeddings_that_saw_the_examples_own_labels_fail_the_examples_suite(spark):
    """The embedding version behind an example's BSE sums must have been trained
    on dates before the example's (its model's data range ends on or after the
    example's date: its labels leak into the features)."""
    day = DAY + dt.timedelta(days=1)
    suite = suites.training_examples_suite(train_len=8, short_len=4)
    sums = {"long_bse": [0.5] * 4, "bse_version": "seqlake-ctr-v3", "bse_projection_sha256": "ab" * 32}
    earlier = [{**row, **sums, "bse_trained_through": DAY} for row in example_rows([1, 0])]
    assert validate_suite(frame(spark, GOLD_TRAINING_EXAMPLES.columns, earlier), suite).success
    same_day = [{**row, **sums, "bse_trained_through": day} for row in example_rows([1, 0])]
    result = validate_suite(frame(spark, GOLD_TRAINING_EXAMPLES.columns, same_day), suite)
    assert failed(result) == ["the embeddings behind the BSE sums were trained on dates before the example's"]
    assert result.failures[0].observed["unexpected"] == 2
    # Sums without the version they were published under (or a version without sums) fail too.
    unnamed = [{**row, "long_bse": [0.5] * 4} for row in example_rows([1, 0])]
    assert failed(validate_suite(frame(spark, GOLD_TRAINING_EXAMPLES.columns, unnamed), suite)) == [
        "BSE sums carry the embedding version they were published under"]


def test_a_date_without_clicks_passes_while_there_is_no_history_and_fails_once_the_days_before_had_a_rate(spark):
    rows = frame(spark, SILVER_EVENTS.columns, [r for r in silver_rows(clicks=4, noisy=1) if r["event_type"] != "click"])
    assert validate_suite(rows, suites.silver_events_suite([], newest=DAY)).success
    history = [DayRate(DAY - dt.timedelta(days=d), 0.2, 1_000) for d in (3, 2, 1)]
    result = validate_suite(rows, suites.silver_events_suite(history, newest=DAY))
    assert [(o.column, o.observed) for o in result.failures] == [("dq_noise", None)]


# --------------------------------------------------------------------------- volume bands


def volumes(rows: list[int]) -> list[DayRate]:
    return [DayRate(DAY - dt.timedelta(days=len(rows) - i), 1.0, n) for i, n in enumerate(rows)]


def test_a_volume_band_is_a_prediction_interval_of_log_rows():
    import math

    from scipy.stats import t

    band = bands.volume_band(volumes([10_000, 11_000, 9_000, 10_500]))
    logs = [math.log(n) for n in (10_000, 11_000, 9_000, 10_500)]
    mean, sd = sum(logs) / 4, (sum((x - sum(logs) / 4) ** 2 for x in logs) / 3) ** 0.5
    half = t.ppf(1 - 0.0005, 3) * sd * math.sqrt(1 + 1 / 4)
    assert (band.low, band.high) == (math.floor(math.exp(mean - half)), math.ceil(math.exp(mean + half)))
    assert band.basis.startswith("4 days 2026-10-29..2026-11-01: median 10,247 rows")
    # Without three days of history: no bound.
    assert (bands.volume_band(volumes([100, 100])).low, bands.volume_band(volumes([100, 100])).high) == (0, math.inf)
    # Steady small counts are held to their Poisson noise, not to a zero spread.
    steady = bands.volume_band(volumes([80] * 7))
    assert 30 < steady.low < 60 and 100 < steady.high < 200


def test_a_newest_date_with_a_tenth_of_the_usual_rows_fails_silver(spark):
    day_before = [DayRate(DAY - dt.timedelta(days=d), 0.25, 40) for d in (4, 3, 2, 1)]
    usual = volumes([80, 84, 78, 82])
    suite = suites.silver_events_suite(day_before, newest=DAY, volume_history=usual)
    result = validate_suite(frame(spark, SILVER_EVENTS.columns, silver_rows(clicks=4)), suite)
    assert failed(result) == [f"rows of {DAY} in [{bands.volume_band(usual).low}, {bands.volume_band(usual).high}] "
                              f"({bands.volume_band(usual).basis})"]
    assert result.failures[0].observed == 8
    assert validate_suite(frame(spark, SILVER_EVENTS.columns, silver_rows(clicks=40, noisy=10)), suite).success


def test_a_batch_that_would_leave_a_published_date_empty_fails_unless_the_stage_says_it_is_empty_by_right(spark, tmp_path):
    from deltalake import DeltaTable

    from pipelines.errors import QualityGateFailed
    from pipelines.lakehouse.tables import table_uri
    from pipelines.quality.gate import audit_and_publish_dates

    lakehouse, suite = str(tmp_path / "lakehouse"), suites.training_examples_suite(train_len=8, short_len=4)
    day, next_day = DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)
    both = example_rows([1, 0, 0]) + [{**r, "event_date": next_day, "features_as_of": day, "impression_ts": r["impression_ts"] + 86_400_000}
                                      for r in example_rows([0, 1])]
    audit_and_publish_dates(spark, frame(spark, GOLD_TRAINING_EXAMPLES.columns, both), lakehouse, GOLD_TRAINING_EXAMPLES, day, next_day, suite)
    version = DeltaTable(table_uri(lakehouse, GOLD_TRAINING_EXAMPLES)).version()

    only_next = frame(spark, GOLD_TRAINING_EXAMPLES.columns, both[3:])
    empty = frame(spark, GOLD_TRAINING_EXAMPLES.columns, [])
    for batch in (only_next, empty):
        with pytest.raises(QualityGateFailed, match=rf"the batch leaves no published date without rows .*\{{\"{day}\": 3"):
            audit_and_publish_dates(spark, batch, lakehouse, GOLD_TRAINING_EXAMPLES, day, next_day, suite)
    assert DeltaTable(table_uri(lakehouse, GOLD_TRAINING_EXAMPLES)).version() == version

    audit_and_publish_dates(spark, only_next, lakehouse, GOLD_TRAINING_EXAMPLES, day, next_day, suite, empty_by_right={day})
    published = delta_rows(DeltaTable(table_uri(lakehouse, GOLD_TRAINING_EXAMPLES)))
    assert sorted(published.column("event_date").to_pylist()) == [next_day, next_day]


def test_duplicate_keys_fail(spark):
    sequences = frame(spark, GOLD_USER_SEQUENCES.columns, [sequence_row(1), sequence_row(1), sequence_row(2)])
    result = validate_suite(sequences, suites.user_sequences_suite(max_len=8))
    assert failed(result) == ["(user_id, as_of_date) is unique"]
    assert result.failures[0].observed["unexpected"] == 2

    events = silver_rows()
    events[3]["event_id"] = events[1]["event_id"]  # two clicks, one id
    result = validate_suite(frame(spark, SILVER_EVENTS.columns, events), suites.silver_events_suite())
    assert failed(result) == ["event_id is unique"]


def test_an_unsorted_or_too_long_sequence_fails(spark):
    rows = [
        sequence_row(1),
        sequence_row(2, timestamps=(T0 - 1_000, T0 - 5_000, T0 - 3_000)),
        sequence_row(3, timestamps=tuple(T0 - 1_000 * i for i in range(9, 0, -1))),
    ]
    result = validate_suite(frame(spark, GOLD_USER_SEQUENCES.columns, rows), suites.user_sequences_suite(max_len=8))
    assert failed(result) == ["1 <= length <= 8", "timestamps non-decreasing (newest last)"]
    assert [o.observed["unexpected"] for o in result.failures] == [1, 1]
    assert [e["user_id"] for o in result.failures for e in o.observed["examples"]] == [3, 2]


def test_scores_are_checked_against_their_candidates(spark):
    candidates = spark.createDataFrame(
        [(u, i, DAY) for u in (1, 2) for i in (10, 11)], "user_id bigint, item_id bigint, score_date date"
    )

    def scores(pairs):
        return frame(spark, SCORES_CTR.columns, [
            {"user_id": u, "item_id": i, "candidate_source": "recent", "score": 0.3, "model_version": "3", "score_date": DAY}
            for u, i in pairs
        ])

    steady = history([1.0] * 7, rows=4)
    complete = suites.scored_candidates(scores([(1, 10), (1, 11), (2, 10), (2, 11)]), candidates)
    assert validate_suite(complete, suites.scores_ctr_suite(steady)).success
    partial = suites.scored_candidates(scores([(1, 10), (1, 11), (2, 10), (3, 99)]), candidates)
    result = validate_suite(partial, suites.scores_ctr_suite(steady))
    assert failed(result) == [
        "every score is for a candidate",
        "share of candidates scored in [1, 1] (7 days 2026-10-26..2026-11-01: mean 1, sd 0, 99.9% prediction interval)",
    ]
    assert result.failures[1].observed == 0.75


def test_good_bronze_and_bse_batches_pass(spark):
    bronze_rows = [{k: v for k, v in r.items() if k not in ("dwell_source", "session_id", "noise_reason")} for r in silver_rows()]
    bronze = frame(spark, BRONZE_EVENTS.columns, bronze_rows)
    assert validate_suite(bronze, suites.bronze_events_suite(3, 60)).success

    buckets = [
        {"user_id": 1, "as_of_date": DAY, "hash_index": h, "code": c, "count": n, "vector_sum": [0.5, 0.5],
         "version": "bootstrap-v1", "projection_sha256": "abc"}
        for h in range(2) for c, n in ((h, 2), (h + 2, 1))  # 3 behaviors under each of the 2 functions
    ]
    suite = suites.user_bse_suite(signatures=2, bits=2, embedding_dim=2)
    assert validate_suite(frame(spark, GOLD_USER_BSE.columns, buckets), suite).success
    buckets[-1]["count"] = 2  # the second function now hashes 4 behaviors
    assert failed(validate_suite(frame(spark, GOLD_USER_BSE.columns, buckets), suite)) == [
        "each user has all 2 hash functions, each hashing every behavior once"
    ]


def test_results_are_readable_and_flat(spark):
    raw = frame(spark, GOLD_USER_SEQUENCES.columns, [sequence_row(1, timestamps=(T0, T0 - 1))])
    df = raw.withColumn("dq_is_sorted", raw["timestamps"].isNotNull())  # a dq_ column: not part of the schema
    result = validate(df, "gold/user_sequences", suites.user_sequences_suite(max_len=8).expectations[:4], details="all")
    assert result.success and result.outcomes[1].observed == 1
    assert not df.is_cached and spark._jsparkSession.sharedState().cacheManager().isEmpty()
    row = result.to_row()
    assert all(isinstance(v, (str, int, float, bool)) for v in row.values())
    assert json.loads(row["failed_expectations"]) == [] and len(json.loads(row["outcomes"])) == 4
    assert result.summary().startswith("gold/user_sequences: passed, 4/4 expectations met on 1 rows")


def test_a_batch_that_fails_its_gate_is_never_published_and_its_result_is_kept(spark, tmp_path):
    from deltalake import DeltaTable

    from pipelines.errors import QualityGateFailed
    from pipelines.lakehouse.tables import OPS_QUALITY, table_uri
    from pipelines.quality.gate import audit_and_publish_dates

    lakehouse, suite = str(tmp_path / "lakehouse"), suites.user_sequences_suite(max_len=8)
    good = frame(spark, GOLD_USER_SEQUENCES.columns, [sequence_row(1), sequence_row(2)])
    assert audit_and_publish_dates(spark, good, lakehouse, GOLD_USER_SEQUENCES, DAY, DAY, suite).success
    published = DeltaTable(table_uri(lakehouse, GOLD_USER_SEQUENCES))
    version, rows = published.version(), sorted(delta_rows(published).column("user_id").to_pylist())

    unsorted = frame(spark, GOLD_USER_SEQUENCES.columns, [sequence_row(1), sequence_row(3, timestamps=(T0, T0 - 5_000))])
    with pytest.raises(QualityGateFailed, match="timestamps non-decreasing") as failure:
        audit_and_publish_dates(spark, unsorted, lakehouse, GOLD_USER_SEQUENCES, DAY, DAY, suite)
    assert "nothing was published to gold/user_sequences" in str(failure.value)
    refused_at = str(failure.value).rsplit("the rows it refused are at ", 1)[1]
    assert sorted(delta_rows(DeltaTable(refused_at)).column("user_id").to_pylist()) == [1, 3]
    published = DeltaTable(table_uri(lakehouse, GOLD_USER_SEQUENCES))
    assert (published.version(), sorted(delta_rows(published).column("user_id").to_pylist())) == (version, rows)
    results = delta_rows(DeltaTable(table_uri(lakehouse, OPS_QUALITY))).sort_by("validated_at").to_pylist()
    assert [(r["table"], r["date"], r["success"], r["failed"]) for r in results] == [
        ("gold/user_sequences", DAY, True, 0), ("gold/user_sequences", DAY, False, 1)]
    assert json.loads(results[1]["failed_expectations"]) == ["timestamps non-decreasing (newest last)"]
