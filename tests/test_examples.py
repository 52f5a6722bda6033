"""Training examples: labels from the day's clicks, features strictly from before the impression."""

from __future__ import annotations

import datetime as dt

from deltalake import DeltaTable
from pyspark.sql import functions as F

from jobs.build_examples import build_examples
from jobs.build_sequences import build_sequences
from pipelines.lakehouse.tables import (
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
    table_uri,
)
from pipelines.lakehouse.writes import replace_date_partitions
from tests.conftest import settings_in

D = dt.date(2026, 11, 3)
SILVER_DDL = (
    "event_id string, event_type string, user_id long, item_id long, category_id int, impression_id string, "
    "position int, ts long, dwell_ms long, content_length int, noise_reason string, event_date date"
)


def _ms(day: dt.date, hour: int, second: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, 0, second), tzinfo=dt.UTC).timestamp() * 1000)


def _event(eid, kind, user, item, day, hour, second=0, impression=None, noise=None):
    return (eid, kind, user, item, item % 3, impression, 0, _ms(day, hour, second),
            20_000 if kind == "click" else None, 100, noise, day)


def _night(spark, tmp_path, *overrides):
    d1, d2 = D - dt.timedelta(days=1), D - dt.timedelta(days=2)
    rows = [
        _event("a", "impression", 1, 10, d2, 9, impression="i0"),
        _event("b", "click", 1, 10, d2, 9, 5, impression="i0"),
        _event("c", "impression", 1, 11, d1, 9, impression="i1"),
        _event("d", "click", 1, 11, d1, 9, 5, impression="i1"),
        _event("e", "click", 1, 12, d1, 10, noise="short_dwell"),
        _event("f", "impression", 2, 20, d1, 11, impression="i2"),
        _event("g", "click", 2, 20, d1, 11, 5, impression="i2"),
        # Day D: a genuine read before the impressions must not leak into features.
        _event("h", "click", 1, 13, D, 8),
        _event("i", "impression", 1, 20, D, 9, impression="iD"),
        _event("j", "impression", 1, 21, D, 9, impression="iD"),
        _event("k", "impression", 1, 22, D, 9, impression="iD"),
        _event("l", "click", 1, 20, D, 9, 5, impression="iD"),
        _event("m", "click", 1, 22, D, 9, 7, impression="iD", noise="short_dwell"),
    ]
    settings = settings_in(tmp_path, *overrides)
    silver = spark.createDataFrame(rows, SILVER_DDL)
    replace_date_partitions(silver, settings.lakehouse, SILVER_EVENTS, d2, D)
    build_sequences(spark, settings, d1)
    build_sequences(spark, settings, D)
    figures = build_examples(spark, settings, D)
    examples = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_TRAINING_EXAMPLES))
    return settings, figures, {r["item_id"]: r.asDict() for r in examples.collect()}


def test_labels_and_point_in_time_features(spark, tmp_path):
    _, figures, rows = _night(spark, tmp_path)
    assert sorted(rows) == [20, 21]  # 22 was clicked only as noise: excluded
    assert (rows[20]["label"], rows[21]["label"]) == (1, 0)
    assert figures["examples"] == 2 and figures["label_rate"] == 0.5
    for row in rows.values():
        # As of D-1: the read of item 13 earlier on D is not there, nor the noisy click.
        assert row["long_item_ids"] == [10, 11]
        assert row["short_item_ids"] == [10, 11]
        assert row["features_as_of"] == D - dt.timedelta(days=1)
        assert (row["user_impressions"], row["user_clicks"], row["user_ctr"]) == (2, 2, 1.0)
    # Item 20 as of D-1: user 2's impression and click only, not user 1's on D.
    assert (rows[20]["item_impressions"], rows[20]["item_clicks"]) == (1, 1)
    assert rows[21]["item_impressions"] is None


def test_noisy_clicks_can_be_negatives_and_sequences_are_truncated(spark, tmp_path):
    settings, _, rows = _night(
        spark, tmp_path, "examples.noisy_clicks=negative", "examples.train_len=1", "examples.short_len=1",
        "examples.max_records_per_file=1",
    )
    assert {item: r["label"] for item, r in rows.items()} == {20: 1, 21: 0, 22: 0}
    # Files are capped in rows so that training can stream them.
    files = DeltaTable(table_uri(settings.lakehouse, GOLD_TRAINING_EXAMPLES)).file_uris()
    assert len(files) == 3
    assert all(r["long_item_ids"] == [11] and r["short_category_ids"] == [11 % 3] for r in rows.values())


def test_rerun_replaces_the_date(spark, tmp_path):
    settings, first, _ = _night(spark, tmp_path)
    second = build_examples(spark, settings, D)
    assert {**second, "seconds": 0} == {**first, "seconds": 0}


def test_generated_features_never_see_the_impression_or_later(spark, cleaned_small_world):
    settings = cleaned_small_world
    day = settings.generator.start_date + dt.timedelta(days=1)
    build_sequences(spark, settings, day)
    figures = build_examples(spark, settings, day)
    assert figures["examples"] > 1000 and 0 < figures["label_rate"] < 0.5
    examples = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_TRAINING_EXAMPLES)).where(
        F.col("event_date") == F.lit(day)
    )
    snapshots = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_USER_SEQUENCES)).select(
        "user_id", F.col("as_of_date").alias("features_as_of"), F.array_max("timestamps").alias("newest_feature_ts")
    )
    leaks = examples.join(snapshots, ["user_id", "features_as_of"]).where(
        F.col("newest_feature_ts") >= F.col("impression_ts")
    )
    assert examples.join(snapshots, ["user_id", "features_as_of"]).count() > 0
    assert leaks.count() == 0
