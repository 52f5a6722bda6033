"""Training examples: one per shown slot, labelled by its own click; features as
published the night before; implicit feedback for sources without impressions."""

from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from pipelines.examples.training_examples import sampling_intervals
from pipelines.lakehouse.tables import (
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
    table_uri,
)
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions
from pipelines.stages.clean import clean_dates
from pipelines.stages.examples import build_examples
from pipelines.stages.sequences import build_sequences
from tests.bronze_rows import write_bronze
from tests.conftest import settings_in

D = dt.date(2026, 11, 3)
SILVER_DDL = (
    "event_id string, event_type string, user_id long, item_id long, category_id int, impression_id string, "
    "position int, ts long, dwell_ms long, content_length int, noise_reason string, source string, event_date date"
)


def _ms(day: dt.date, hour: int, second: int = 0) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, 0, second), tzinfo=dt.UTC).timestamp() * 1000)


def _event(eid, kind, user, item, day, hour, second=0, impression=None, position=0, noise=None, source="landing"):
    return (eid, kind, user, item, item % 3, impression, position if impression else None, _ms(day, hour, second),
            20_000 if kind != "impression" else None, 100, noise, source, day)


def _examples(spark, settings, day=D):
    rows = read_date_partitions(spark, settings.lakehouse, GOLD_TRAINING_EXAMPLES, day).collect()
    return sorted((r.asDict() for r in rows), key=lambda r: (r["user_id"], r["impression_id"] or "", r["position"] or 0, r["item_id"]))


def _night(spark, settings, rows):
    """Hand-built silver of D-2 .. D, then the sequences and examples nights of D-1 and D."""
    silver = spark.createDataFrame(rows, SILVER_DDL)
    replace_date_partitions(silver, settings.lakehouse, SILVER_EVENTS, D - dt.timedelta(days=2), D)
    build_sequences(spark, settings, D - dt.timedelta(days=1))
    build_sequences(spark, settings, D)
    return build_examples(spark, settings, D)


HISTORY = [
    _event("a", "impression", 1, 10, D - dt.timedelta(days=2), 9, impression="i0"),
    _event("b", "click", 1, 10, D - dt.timedelta(days=2), 9, 5, impression="i0"),
    _event("c", "impression", 1, 11, D - dt.timedelta(days=1), 9, impression="i1"),
    _event("d", "click", 1, 11, D - dt.timedelta(days=1), 9, 5, impression="i1"),
    _event("e", "click", 1, 12, D - dt.timedelta(days=1), 10, noise="short_dwell"),
    _event("f", "impression", 2, 20, D - dt.timedelta(days=1), 11, impression="i2"),
    _event("g", "click", 2, 20, D - dt.timedelta(days=1), 11, 5, impression="i2"),
]


def test_one_example_per_shown_slot_labelled_by_its_own_click(spark, tmp_path):
    settings = settings_in(tmp_path)
    page = [
        # Item 20 is shown twice on one page; only its second slot is clicked.
        _event("h", "click", 1, 13, D, 8),  # a read earlier on D must not reach the features
        _event("i", "impression", 1, 20, D, 9, impression="iD", position=0),
        _event("j", "impression", 1, 21, D, 9, impression="iD", position=1),
        _event("k", "impression", 1, 20, D, 9, impression="iD", position=2),
        _event("l", "click", 1, 20, D, 9, 5, impression="iD", position=2),
        _event("m", "impression", 1, 22, D, 9, impression="iD", position=3),
        _event("n", "click", 1, 22, D, 9, 7, impression="iD", position=3, noise="short_dwell"),
        # User 9 is a bot that day: none of its impressions become examples.
        _event("o", "impression", 9, 20, D, 12, impression="iB", position=0),
        _event("p", "impression", 9, 21, D, 12, impression="iB", position=1),
        _event("q", "click", 9, 21, D, 12, 1, impression="iB", position=1, noise="bot"),
    ]
    figures = _night(spark, settings, HISTORY + page)
    got = [(r["user_id"], r["item_id"], r["position"], r["label"]) for r in _examples(spark, settings)]
    # Slot 3 was clicked only as noise: excluded (examples.noisy_clicks = "exclude").
    assert got == [(1, 20, 0, 0), (1, 21, 1, 0), (1, 20, 2, 1)]
    assert (figures["examples"], figures["excluded_bot_impressions"], figures["examples_by_mode"]) == (3, 2, {"impressions": 3})
    for row in _examples(spark, settings):
        # As of D-1: the genuine reads of items 10 and 11, not the noisy one, not D's read of 13.
        assert (row["long_item_ids"], row["short_item_ids"], row["features_as_of"]) == ([10, 11], [10, 11], D - dt.timedelta(days=1))
        assert (row["user_impressions"], row["user_clicks"], row["user_ctr"]) == (2, 2, 1.0)
        assert row["label_mode"] == "impressions"
    # Item 20 as of D-1: user 2's impression and click, nothing of D.
    assert [(r["item_impressions"], r["item_clicks"]) for r in _examples(spark, settings)][0] == (1, 1)


def test_noisy_clicks_can_be_negatives_and_sequences_are_truncated(spark, tmp_path):
    settings = settings_in(
        tmp_path, "examples.noisy_clicks=negative", "examples.train_len=1", "examples.short_len=1",
        "examples.max_records_per_file=1",
    )
    page = [
        _event("i", "impression", 1, 20, D, 9, impression="iD", position=0),
        _event("l", "click", 1, 20, D, 9, 5, impression="iD", position=0),
        _event("m", "impression", 1, 22, D, 9, impression="iD", position=1),
        _event("n", "click", 1, 22, D, 9, 7, impression="iD", position=1, noise="short_dwell"),
    ]
    _night(spark, settings, HISTORY + page)
    rows = _examples(spark, settings)
    assert [(r["item_id"], r["label"]) for r in rows] == [(20, 1), (22, 0)]
    assert all(r["long_item_ids"] == [11] and r["short_category_ids"] == [11 % 3] for r in rows)
    # Files are capped in rows so that training can stream them (one per rewritten date with rows here).
    assert len(DeltaTable(table_uri(settings.lakehouse, GOLD_TRAINING_EXAMPLES)).file_uris()) == 2 + 3


def test_implicit_feedback_gives_each_behavior_k_seeded_negatives_the_user_did_not_act_on(spark, tmp_path):
    settings = settings_in(tmp_path, "examples.negatives_per_positive=2", "examples.negative_sampling=uniform")
    # On D a crowd (users 50..52) acts on items 100..119; user 1 clicks 100, carts 100 and
    # buys 101; user 2 clicks 119 (a noisy click of 102 does not count as a positive).
    crowd = [_event(f"c{i}", "click", 50 + i % 3, 100 + i, D, 8 + i % 10, source="taobao") for i in range(20)]
    today = [
        _event("p1", "click", 1, 100, D, 9, source="taobao"),
        _event("p2", "cart", 1, 100, D, 9, 30, source="taobao"),
        _event("p3", "buy", 1, 101, D, 10, source="taobao"),
        _event("p4", "click", 2, 119, D, 11, source="taobao"),
        _event("n1", "click", 2, 102, D, 11, 3, noise="short_dwell", source="taobao"),
    ]
    # The day before, another user acted on other items: they are not D's population.
    history = [_event(f"h{i}", "click", 60, 300 + i, D - dt.timedelta(days=1), 8 + i, source="taobao") for i in range(5)]
    figures = _night(spark, settings, history + crowd + today)
    rows = _examples(spark, settings)
    assert figures["examples_by_mode"] == {"implicit": 24 * 3}
    positives = sorted((r["user_id"], r["item_id"], r["impression_id"]) for r in rows if r["label"] == 1 and r["user_id"] < 50)
    assert positives == [(1, 100, "implicit-p1"), (1, 100, "implicit-p2"), (1, 101, "implicit-p3"), (2, 119, "implicit-p4")]
    negatives = [r for r in rows if r["label"] == 0]
    by_positive = {}
    for r in negatives:
        by_positive.setdefault(r["impression_id"], []).append(r["item_id"])
    assert len(by_positive) == 24 and {"implicit-p1", "implicit-p2", "implicit-p3", "implicit-p4"} <= set(by_positive)
    acted = {1: {100, 101}, 2: {119, 102}, **{u: {100 + i for i in range(20) if 50 + i % 3 == u} for u in (50, 51, 52)}}
    for r in negatives:
        # Drawn from the items acted on that day, never one the user acted on.
        assert 100 <= r["item_id"] <= 119 and r["item_id"] not in acted[r["user_id"]]
        assert r["impression_ts"] == next(p["impression_ts"] for p in rows if p["label"] == 1 and p["impression_id"] == r["impression_id"])
    assert all(len(items) == 2 == len(set(items)) for items in by_positive.values())
    # Seeded: a rerun draws the same negatives, another seed others.
    build_examples(spark, settings, D)
    assert _examples(spark, settings) == rows
    reseeded = settings.model_copy(update={"examples": settings.examples.model_copy(update={"negative_seed": 99})})
    build_examples(spark, reseeded, D)
    assert sorted(r["item_id"] for r in _examples(spark, reseeded) if r["label"] == 0) != sorted(r["item_id"] for r in negatives)


def test_implicit_labels_do_not_follow_from_missing_item_statistics_and_bot_days_give_no_positives(spark, tmp_path):
    """Items 1..60 were acted on the day before (they have statistics as of
    D-1), items 61..120 are new on D. Negatives come from the same day's
    population as the positives, so the label rate among rows whose item has no
    statistics is the overall rate, 1 / (1 + K), within sampling error; and a
    bot's user-day gives neither positives nor negatives."""
    import random

    settings = settings_in(tmp_path, "examples.negatives_per_positive=4")
    rng = random.Random(5)
    before = D - dt.timedelta(days=1)
    history = [_event(f"h{i}", "click", 500 + i % 7, 1 + i % 60, before, 8 + i % 12, i % 50, source="taobao") for i in range(120)]
    today = []
    for i in range(500):
        item = rng.randint(1, 120)
        today.append(_event(f"p{i}", rng.choice(["click", "cart", "buy"]), 1 + rng.randint(0, 199), item, D, 8 + i % 14, i % 59, source="taobao"))
    # User 900 is a bot on D: its clicks are flagged, its carts and buys are not, and none may be a positive.
    bot = [_event(f"b{i}", "click", 900, 1 + i, D, 3, i, noise="bot", source="taobao") for i in range(20)]
    bot += [_event(f"bc{i}", "cart", 900, 1 + i, D, 4, i, source="taobao") for i in range(10)]
    _night(spark, settings, history + today + bot)
    rows = _examples(spark, settings)
    assert not [r for r in rows if r["user_id"] == 900]
    labels = [r["label"] for r in rows]
    unknown = [r["label"] for r in rows if r["item_actions"] is None]
    assert sum(labels) == 500 and len(labels) == 500 * 5
    assert len(unknown) > 800  # about half the rows: the new items draw as many negatives as their share of positives
    rate, expected = sum(unknown) / len(unknown), 1 / 5
    assert abs(rate - expected) < 4 * (expected * (1 - expected) / len(unknown)) ** 0.5, rate


def test_draws_map_to_items_in_proportion_to_their_weight(spark):
    pool = spark.createDataFrame(
        [(1, 7, 1.0, D), (2, 7, 3.0, D), (3, 8, 4.0, D)], "item_id long, category_id int, weight double, event_date date"
    )
    intervals = {(r["item_id"], r["_low"], r["_high"]) for r in sampling_intervals(pool).collect()}
    assert intervals == {(1, 0.0, 0.125), (2, 0.125, 0.5), (3, 0.5, 1.0)}
    buckets = sampling_intervals(pool).groupBy("_bucket").count().collect()
    assert len(buckets) == 4096 and max(r["count"] for r in buckets) == 2  # an item boundary shares its bucket


def _bronze_night_rows(day: dt.date, user: int, reads_s: list[float], start_hour: int = 8) -> list[dict]:
    t0 = int(dt.datetime.combine(day, dt.time(start_hour), tzinfo=dt.UTC).timestamp() * 1000)
    rows, t = [], t0
    for i, read in enumerate(reads_s):
        rows.append({"event_id": f"r{user}-{day}-{i}", "user_id": user, "item_id": 200 + i % 7, "ts": t,
                     "dwell_ms": int(read * 1000), "content_length": 100})
        t += int(read * 1000) + 5_000
    return rows


def _page(day: dt.date, user: int, impression: str, items: list[int], hour: int = 15) -> list[dict]:
    t = int(dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC).timestamp() * 1000)
    return [{"event_id": f"{impression}-{p}", "event_type": "impression", "user_id": user, "item_id": item,
             "impression_id": impression, "position": p, "ts": t + 20 * p} for p, item in enumerate(items)]


def _run_night(spark, settings, day):
    clean_dates(spark, settings, day)
    build_sequences(spark, settings, day)
    build_examples(spark, settings, day)


def _features(spark, settings, day):
    keep = ["user_id", "impression_id", "position", "features_as_of", "long_item_ids", "long_timestamps",
            "user_clicks", "user_impressions", "item_clicks", "item_impressions"]
    rows = read_date_partitions(spark, settings.lakehouse, GOLD_TRAINING_EXAMPLES, day).select(*keep).collect()
    return sorted(tuple(r) for r in rows)


def test_features_of_a_date_do_not_change_when_that_date_changes(spark, tmp_path):
    settings = settings_in(tmp_path)
    before = D - dt.timedelta(days=1)
    readers = [r for user in range(1, 13) for r in _bronze_night_rows(before, user, [20 + user, 35, 18 + user % 4, 40, 25])]
    # User 1's read of 9 s on D-1 is ordinary next to their 20-40 s reads.
    yesterday = readers + [{"event_id": "ordinary", "user_id": 1, "item_id": 201, "ts": _ms(before, 20),
                            "dwell_ms": 9_000, "content_length": 100}]
    write_bronze(spark, settings, yesterday, before)
    today = _page(D, 1, "iD", [201, 202, 203]) + _bronze_night_rows(D, 2, [30, 30])
    write_bronze(spark, settings, today, D)
    _run_night(spark, settings, before)
    _run_night(spark, settings, D)
    features = _features(spark, settings, D)
    assert len(features) == 3 and all(f[4] for f in features)

    # D changes: user 1 reads very slowly all day and a crowd of new readers appears.
    slow = _bronze_night_rows(D, 1, [300, 280, 320, 310, 290, 305], start_hour=5)
    crowd = [r for user in range(40, 80) for r in _bronze_night_rows(D, user, [3, 2, 4], start_hour=18)]
    write_bronze(spark, settings, today + slow + crowd, D)
    _run_night(spark, settings, D)
    assert _features(spark, settings, D) == features


def test_a_late_click_updates_its_slots_label_when_it_lands(spark, tmp_path):
    settings = settings_in(tmp_path)
    readers = [r for user in range(1, 6) for r in _bronze_night_rows(D, user, [20, 30, 25])]
    page = _page(D, 1, "iL", [210, 211])
    write_bronze(spark, settings, readers + page, D)
    _run_night(spark, settings, D)
    assert [(r["item_id"], r["label"]) for r in _examples(spark, settings)] == [(210, 0), (211, 0)]

    late_click = {"event_id": "late-click", "user_id": 1, "item_id": 211, "impression_id": "iL", "position": 1,
                  "ts": page[1]["ts"] + 2_000, "dwell_ms": 25_000, "content_length": 100}
    write_bronze(spark, settings, [late_click], D + dt.timedelta(days=1))
    _run_night(spark, settings, D + dt.timedelta(days=1))
    assert [(r["item_id"], r["label"]) for r in _examples(spark, settings)] == [(210, 0), (211, 1)]


def test_a_late_event_restates_yesterdays_snapshot_but_never_the_features_published_before_it(spark, tmp_path, monkeypatch):
    """A click of D-1 lands during D, and clean's night D adds it to silver's
    D-1. Night D restates the snapshot as of D-1 with it, for the nights after;
    but the examples of D, and the feature store at any instant, read the
    snapshot as night D-1 published it."""
    import pipelines.lakehouse.ledger as ledger
    from features.store import historical_features

    settings = settings_in(tmp_path)
    before = D - dt.timedelta(days=1)
    silver = spark.createDataFrame(HISTORY, SILVER_DDL)
    replace_date_partitions(silver, settings.lakehouse, SILVER_EVENTS, D - dt.timedelta(days=2), before)
    # Each night runs at 02:00 the day after, and its ledger rows say so.
    monkeypatch.setattr(ledger, "now_utc", lambda: dt.datetime.combine(D, dt.time(2)))
    build_sequences(spark, settings, before)
    user_1 = spark.createDataFrame([(1, dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC))], "user_id long, event_timestamp timestamp")

    def read_at_noon_of_d():
        return historical_features(spark, settings.lakehouse, user_1, ["user_sequence:item_ids"]).first()["user_sequence__item_ids"]

    assert read_at_noon_of_d() == [10, 11]
    late = _event("late", "click", 1, 19, before, 23)
    page = [_event("i", "impression", 1, 20, D, 9, impression="iD", position=0),
            _event("j", "impression", 1, 21, D, 9, impression="iD", position=1)]
    replace_date_partitions(spark.createDataFrame(HISTORY + [late] + page, SILVER_DDL), settings.lakehouse, SILVER_EVENTS,
                            D - dt.timedelta(days=2), D)
    monkeypatch.setattr(ledger, "now_utc", lambda: dt.datetime.combine(D + dt.timedelta(days=1), dt.time(2)))
    build_sequences(spark, settings, D)
    build_examples(spark, settings, D)

    restated = read_date_partitions(spark, settings.lakehouse, GOLD_USER_SEQUENCES, before).where("user_id = 1").first()
    assert restated["item_ids"] == [10, 11, 19]  # the late click reached the snapshot as of D-1 ...
    examples = _examples(spark, settings)
    assert [(r["item_id"], r["long_item_ids"]) for r in examples] == [(20, [10, 11]), (21, [10, 11])]  # ... not the examples of D
    assert read_at_noon_of_d() == [10, 11]  # ... nor a read for an instant of D


def test_generated_features_never_see_the_impression_or_later(spark, generated_nights):
    settings, day = generated_nights.nightly, generated_nights.days[-1]
    examples = read_date_partitions(spark, settings.lakehouse, GOLD_TRAINING_EXAMPLES, day)
    assert examples.count() > 1000 and 0 < examples.agg(F.mean("label")).first()[0] < 0.5
    assert examples.groupBy("user_id", "impression_id", "position").count().where(F.col("count") > 1).count() == 0
    snapshots = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_USER_SEQUENCES)).select(
        "user_id", F.col("as_of_date").alias("features_as_of"), F.array_max("timestamps").alias("newest_feature_ts")
    )
    joined = examples.join(snapshots, ["user_id", "features_as_of"])
    assert joined.count() > 0
    assert joined.where(F.col("newest_feature_ts") >= F.col("impression_ts")).count() == 0
    assert examples.where(F.array_max("long_timestamps") >= F.col("impression_ts")).count() == 0


@pytest.mark.parametrize("mode", ["bad"])
def test_label_modes_are_validated(mode):
    from pipelines.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="^examples.label_modes.kuairand: "):
        load_settings(env="local", overrides=[f"examples.label_modes.kuairand={mode}"])
