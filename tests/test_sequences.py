"""Behavior sequences: genuine behaviors, time order, newest last, capped; incremental == full rebuild."""

from __future__ import annotations

import datetime as dt

import numpy as np
from pyspark.sql import functions as F

from pipelines.lakehouse.tables import GOLD_USER_SEQUENCES, table_uri
from pipelines.lakehouse.writes import read_date_partitions
from pipelines.sequences.behavior_sequences import genuine_behaviors, window_snapshots
from pipelines.stages.clean import clean_dates
from pipelines.stages.sequences import build_sequences

D = dt.date(2026, 11, 2)
SILVER_DDL = (
    "user_id long, event_id string, event_type string, item_id long, category_id int, "
    "ts long, dwell_ms long, noise_reason string, event_date date"
)


def _silver(spark, rows):
    full = [
        (r.get("user", 1), r["id"], r.get("type", "click"), r["item"], r.get("cat", 1), r["ts"],
         r.get("dwell"), r.get("noise"), r.get("date", D))
        for r in rows
    ]
    return spark.createDataFrame(full, SILVER_DDL)


def _rows(df):
    return {r["user_id"]: r.asDict() for r in df.collect()}


def test_only_genuine_behaviors_in_time_order_newest_last_capped(spark):
    silver = _silver(spark, [
        {"id": "a", "item": 10, "ts": 300, "dwell": 9},
        {"id": "b", "item": 11, "ts": 100, "dwell": 8},
        {"id": "c", "item": 12, "ts": 200, "noise": "short_dwell"},
        {"id": "d", "item": 13, "ts": 150, "type": "impression"},
        {"id": "e", "item": 14, "ts": 400, "type": "buy", "cat": 3},
        {"id": "f2", "item": 15, "ts": 500},
        {"id": "f1", "item": 16, "ts": 500},  # same time: event id breaks the tie
        {"id": "g", "item": 17, "ts": 50},
    ])
    got = _rows(window_snapshots(None, genuine_behaviors(silver), D, D, max_len=4))
    assert got == {1: {
        "user_id": 1,
        "item_ids": [10, 14, 16, 15],
        "category_ids": [1, 3, 1, 1],
        "timestamps": [300, 400, 500, 500],
        "dwell_ms": [9, None, None, None],
        "actions": ["click", "buy", "click", "click"],
        "length": 4,
        "as_of_date": D,
    }}


def test_users_without_new_behaviors_carry_over_and_new_users_start(spark):
    yesterday = D - dt.timedelta(days=1)
    base = window_snapshots(None, genuine_behaviors(_silver(spark, [
        {"user": 1, "id": "a", "item": 1, "ts": 10, "date": yesterday},
        {"user": 1, "id": "b", "item": 2, "ts": 20, "date": yesterday},
        {"user": 2, "id": "c", "item": 3, "ts": 15, "date": yesterday},
    ])), yesterday, yesterday, max_len=3)
    later = genuine_behaviors(_silver(spark, [
        {"user": 2, "id": "d", "item": 4, "ts": 30},
        {"user": 2, "id": "e", "item": 5, "ts": 40},
        {"user": 2, "id": "f", "item": 6, "ts": 50, "date": D + dt.timedelta(days=1)},
        {"user": 3, "id": "g", "item": 7, "ts": 35, "date": D + dt.timedelta(days=1)},
    ]))
    snapshots = window_snapshots(base, later, D, D + dt.timedelta(days=1), 3).collect()
    got = {(r["user_id"], r["as_of_date"]): (r["item_ids"], r["length"]) for r in snapshots}
    tomorrow = D + dt.timedelta(days=1)
    assert got == {
        (1, D): ([1, 2], 2), (1, tomorrow): ([1, 2], 2),
        (2, D): ([3, 4, 5], 3), (2, tomorrow): ([4, 5, 6], 3),
        (3, tomorrow): ([7], 1),
    }


def _content(spark, settings, table, drop=()):
    df = spark.read.format("delta").load(table_uri(settings.lakehouse, table)).drop(*drop)
    return sorted(tuple(r) for r in df.collect())


def test_a_range_run_writes_what_the_nightly_runs_write(spark, generated_nights):
    from pipelines.lakehouse.tables import (
        GOLD_ITEM_SIGNATURES,
        GOLD_ITEM_STATS,
        GOLD_TRAINING_EXAMPLES,
        GOLD_USER_BSE,
        GOLD_USER_STATS,
        SILVER_EVENTS,
    )

    nightly, ranged, days = generated_nights.nightly, generated_nights.ranged, generated_nights.days
    # Both lakehouses ingested the same landing files, at different times.
    assert _content(spark, nightly, SILVER_EVENTS, ["ingest_ts"]) == _content(spark, ranged, SILVER_EVENTS, ["ingest_ts"])
    retained = F.col("as_of_date") >= F.lit(days[-1] - dt.timedelta(days=2))
    for table in (GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS):
        # The range run keeps every as-of date of the range; the nights deleted the oldest
        # (the range run's next night will).
        ranged_rows = spark.read.format("delta").load(table_uri(ranged.lakehouse, table)).where(retained)
        assert sorted(tuple(r) for r in ranged_rows.collect()) == _content(spark, nightly, table), table.name
    # The nights from the third on updated the bucket sums of the day before; the range hashed
    # every long side. Equal buckets and counts, sums to float32 rounding.
    assert generated_nights.signature_modes == ["full", "full", "incremental", "incremental"]
    nightly_bse = _content(spark, nightly, GOLD_USER_BSE)
    ranged_bse = sorted(tuple(r) for r in spark.read.format("delta").load(table_uri(ranged.lakehouse, GOLD_USER_BSE))
                        .where(retained).collect())
    vector_sum = GOLD_USER_BSE.schema.names.index("vector_sum")

    def without_sums(rows):
        return [r[:vector_sum] + r[vector_sum + 1:] for r in rows]

    assert without_sums(nightly_bse) == without_sums(ranged_bse)
    np.testing.assert_allclose([r[vector_sum] for r in nightly_bse], [r[vector_sum] for r in ranged_bse], rtol=0, atol=1e-5)
    assert _content(spark, nightly, GOLD_ITEM_SIGNATURES) == _content(spark, ranged, GOLD_ITEM_SIGNATURES)
    # The same examples and labels. Their features differ where late events landed: each night's
    # examples read the snapshots as the night before published them, the range run's read what it
    # published itself, after every landing (tests/test_examples.py has the rule on a hand-built day).
    labelled = ["user_id", "impression_id", "position", "item_id", "event_date", "label", "features_as_of"]

    def examples(settings):
        frame = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_TRAINING_EXAMPLES))
        return sorted(tuple(r) for r in frame.select(*labelled).collect())

    assert examples(nightly) == examples(ranged)


def test_incremental_snapshots_equal_a_full_rebuild_and_reruns_change_nothing(spark, generated_nights):
    settings, days, modes = generated_nights.nightly, generated_nights.days, generated_nights.sequence_modes
    # From the third night on, the snapshot before the rewritten dates exists.
    assert modes == ["full", "full", "incremental", "incremental"]

    def snapshot(day):
        df = read_date_partitions(spark, settings.lakehouse, GOLD_USER_SEQUENCES, day)
        return sorted(tuple(r) for r in df.collect())

    incremental = {day: snapshot(day) for day in days[-2:]}
    assert build_sequences(spark, settings, days[-1])["mode"] == "incremental"
    assert {day: snapshot(day) for day in days[-2:]} == incremental
    assert build_sequences(spark, settings, days[-1], full_rebuild=True)["mode"] == "full"
    assert {day: snapshot(day) for day in days[-2:]} == incremental
    assert max(r[-2] for r in incremental[days[-1]]) == 40  # some heavy users hit the cap
    # Retention: two days back are kept, older snapshots are gone.
    kept = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_USER_SEQUENCES))
    assert sorted(r[0] for r in kept.select("as_of_date").distinct().collect()) == days[-3:]
    assert kept.where(F.col("length") > 40).count() == 0


def test_rerunning_an_old_night_keeps_the_late_events_later_nights_added(spark, generated_nights):
    from pipelines.lakehouse.tables import SILVER_EVENTS

    settings, days = generated_nights.nightly, generated_nights.days
    before = _content(spark, settings, SILVER_EVENTS)
    late = read_date_partitions(spark, settings.lakehouse, SILVER_EVENTS, days[1]).where(F.col("landing_date") > F.col("event_date"))
    assert late.count() > 0
    clean_dates(spark, settings, days[1])
    assert _content(spark, settings, SILVER_EVENTS) == before
