"""Clean: dedup, sessions, dwell and the two-stage noise flags, on hand-built bronze rows."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from jobs.clean_events import clean_date
from pipelines.clickstream.denoise import flagged_events, population_reading
from pipelines.clickstream.denoise_quality import flag_quality
from pipelines.clickstream.sessions import (
    deduplicated_events,
    events_with_dwell,
    sessionized_events,
)
from pipelines.config import CleanSettings
from pipelines.lakehouse.tables import BRONZE_EVENTS, SILVER_EVENTS, SILVER_NOISE_METRICS, table_uri
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions
from tests.bronze_rows import at, bronze_frame
from tests.conftest import settings_in

RULES = CleanSettings()
DAY = dt.date(2026, 11, 2)


def _flags(spark, rows: list[dict], rules: CleanSettings = RULES) -> dict[str, str | None]:
    bronze = bronze_frame(spark, rows)
    events = events_with_dwell(
        sessionized_events(deduplicated_events(bronze), rules.session_gap_minutes),
        rules.max_derived_dwell_minutes,
    )
    population = population_reading(bronze.where(F.col("event_type") == "click"))
    return {r["event_id"]: r["noise_reason"] for r in flagged_events(events, population, rules).collect()}


def _reader(n: int, user: int = 1, start_s: float = 0, every_s: float = 60, dwell_ms: int = 25_000) -> list[dict]:
    """n unhurried reads of 100-word items, one a minute, 25 s each."""
    return [
        {"event_id": f"u{user}-r{i}", "user_id": user, "ts": at(start_s + i * every_s),
         "dwell_ms": dwell_ms, "content_length": 100}
        for i in range(n)
    ]


def test_duplicates_keep_the_first_landed_copy(spark):
    rows = [
        {"event_id": "a", "landing_date": DAY, "source_file": "late.jsonl"},
        {"event_id": "a", "landing_date": DAY - dt.timedelta(days=0), "source_file": "early.jsonl"},
        {"event_id": "a", "landing_date": DAY + dt.timedelta(days=1), "source_file": "next.jsonl"},
        {"event_id": "b"},
    ]
    kept = deduplicated_events(bronze_frame(spark, rows)).select("event_id", "source_file").collect()
    assert sorted(tuple(r) for r in kept) == [("a", "early.jsonl"), ("b", "f.jsonl")]


def test_sessions_split_after_the_inactivity_gap_with_deterministic_ids(spark):
    rows = [
        {"event_id": "x1", "ts": at(0)},
        {"event_id": "x2", "ts": at(10 * 60)},
        {"event_id": "x3", "ts": at(10 * 60 + 29 * 60)},  # 29 min later: same session
        {"event_id": "x4", "ts": at(10 * 60 + 29 * 60 + 31 * 60)},  # 31 min later: new session
        {"event_id": "y1", "user_id": 2, "ts": at(5)},
    ]
    sessions = sessionized_events(bronze_frame(spark, rows), gap_minutes=30)
    got = {r["event_id"]: r["session_id"] for r in sessions.collect()}
    assert got == {
        "x1": f"1-{at(0)}", "x2": f"1-{at(0)}", "x3": f"1-{at(0)}",
        "x4": f"1-{at(70 * 60)}", "y1": f"2-{at(5)}",
    }


def test_dwell_is_observed_or_derived_from_the_next_event_and_capped(spark):
    rows = [
        {"event_id": "observed", "ts": at(0), "dwell_ms": 12_000},
        {"event_id": "derived", "ts": at(20), "dwell_ms": None},
        {"event_id": "next", "event_type": "impression", "ts": at(28)},
        {"event_id": "capped", "ts": at(60), "dwell_ms": None},
        {"event_id": "after_cap", "event_type": "impression", "ts": at(60 + 25 * 60)},
        {"event_id": "last", "ts": at(60 + 26 * 60), "dwell_ms": None},
    ]
    sessions = sessionized_events(bronze_frame(spark, rows), gap_minutes=30)
    got = {
        r["event_id"]: (r["dwell_ms"], r["dwell_source"])
        for r in events_with_dwell(sessions, max_derived_dwell_minutes=20).collect()
    }
    assert got == {
        "observed": (12_000, "observed"),
        "derived": (8_000, "derived"),
        "next": (None, None),
        "capped": (20 * 60_000, "derived"),
        "after_cap": (None, None),
        "last": (None, None),
    }


def test_short_dwell_is_judged_against_what_the_content_needs(spark):
    # The user reads 100 words in 25 s (4 words/s); 40% of the need of a
    # 100-word item is 10 s, of a 20-word item 2 s, floored at 1.5 s.
    rows = _reader(10) + [
        {"event_id": "bounce", "ts": at(20 * 60), "dwell_ms": 3_000, "content_length": 100},
        {"event_id": "skim_ok", "ts": at(21 * 60), "dwell_ms": 11_000, "content_length": 100},
        {"event_id": "short_item_read", "ts": at(22 * 60), "dwell_ms": 3_000, "content_length": 20},
        {"event_id": "under_floor", "ts": at(23 * 60), "dwell_ms": 1_000, "content_length": 5},
        {"event_id": "no_length_bounce", "ts": at(24 * 60), "dwell_ms": 2_000, "content_length": None},
        {"event_id": "unknown_dwell", "ts": at(25 * 60 + 31 * 60), "dwell_ms": None, "content_length": 100},
    ]
    flags = _flags(spark, rows)
    assert {k: v for k, v in flags.items() if v} == {
        "bounce": "short_dwell",
        "under_floor": "short_dwell",
        "no_length_bounce": "short_dwell",  # below 40% of the user's typical 25 s
    }
    assert flags["unknown_dwell"] is None


def test_bursts_need_enough_rapid_clicks_in_a_row(spark):
    burst = [{"event_id": f"b{i}", "ts": at(3600 + i * 1.2), "dwell_ms": 30_000, "content_length": 100} for i in range(5)]
    too_few = [{"event_id": f"t{i}", "ts": at(7200 + i * 1.2), "dwell_ms": 30_000, "content_length": 100} for i in range(3)]
    flags = _flags(spark, _reader(20) + burst + too_few)
    assert {k for k, v in flags.items() if v == "burst"} == {f"b{i}" for i in range(5)}
    assert {k for k, v in flags.items() if v} == {f"b{i}" for i in range(5)}


def test_a_user_day_of_machine_regular_clicks_is_a_bot(spark):
    bot = [{"event_id": f"bot{i}", "user_id": 9, "ts": at(i * 5.0), "dwell_ms": 4_800, "content_length": 10} for i in range(40)]
    irregular_heavy_reader = [
        {"event_id": f"h{i}", "user_id": 3, "ts": at(i * 60 + (i % 7) * 17), "dwell_ms": 25_000, "content_length": 100}
        for i in range(40)
    ]
    flags = _flags(spark, bot + irregular_heavy_reader + _reader(5))
    assert {k for k, v in flags.items() if v == "bot"} == {f"bot{i}" for i in range(40)}
    assert all(flags[f"h{i}"] is None for i in range(40))


def test_impressions_are_never_flagged(spark):
    rows = [{"event_id": f"i{i}", "event_type": "impression", "ts": at(i * 0.1)} for i in range(50)]
    assert set(_flags(spark, rows).values()) == {None}


def test_clean_job_conserves_events_and_is_idempotent_across_late_data(spark, tmp_path):
    settings = settings_in(tmp_path)
    late = {"event_id": "late", "ts": at(3600), "landing_date": DAY + dt.timedelta(days=1), "dwell_ms": 20_000, "content_length": 80}
    day_rows = _reader(8) + [
        {"event_id": "u1-r0", "source_file": "redelivered.jsonl"},  # duplicate, same landing day
        {"event_id": "imp", "event_type": "impression", "ts": at(30)},
    ]
    next_rows = [late, {**late, "source_file": "again.jsonl"}, {"event_id": "n1", "ts": at(86_400 + 60), "dwell_ms": 20_000, "content_length": 80}]
    bronze_day = bronze_frame(spark, day_rows)
    replace_date_partitions(bronze_day, settings.lakehouse, BRONZE_EVENTS, DAY)

    first = clean_date(spark, settings, DAY)
    assert (first["bronze_rows"], first["duplicates_dropped"], first["silver_rows"]) == (10, 1, 9)
    snapshot = sorted(tuple(r) for r in spark.read.format("delta").load(table_uri(settings.lakehouse, SILVER_EVENTS)).collect())
    second = clean_date(spark, settings, DAY)
    assert {**second, "seconds": 0} == {**first, "seconds": 0}
    assert sorted(tuple(r) for r in spark.read.format("delta").load(table_uri(settings.lakehouse, SILVER_EVENTS)).collect()) == snapshot

    # The late event and its duplicate land the next day; cleaning that day puts
    # exactly one copy into the earlier event date's partition.
    replace_date_partitions(bronze_frame(spark, next_rows), settings.lakehouse, BRONZE_EVENTS, DAY + dt.timedelta(days=1))
    later = clean_date(spark, settings, DAY + dt.timedelta(days=1))
    assert later["silver_rows"] == 9 + 1 + 1
    day_partition = read_date_partitions(spark, settings.lakehouse, SILVER_EVENTS, DAY)
    assert day_partition.where(F.col("event_id") == "late").count() == 1
    assert day_partition.count() == 10
    metrics = read_date_partitions(spark, settings.lakehouse, SILVER_NOISE_METRICS, DAY)
    assert metrics.agg(F.sum("events")).first()[0] == 10


def test_skewed_user_is_processed_through_spilling_windows(spark):
    """One user with many events per day (scaled down) while window buffers leave
    memory after 1,000 rows and spill to disk every 20,000."""
    thresholds = {
        "spark.sql.windowExec.buffer.in.memory.threshold": "1000",
        "spark.sql.windowExec.buffer.spill.threshold": "20000",
    }
    previous = {key: spark.conf.get(key) for key in thresholds}
    for key, value in thresholds.items():
        spark.conf.set(key, value)
    try:
        n = 60_000
        heavy = spark.range(n).select(
            F.format_string("h%d", "id").alias("event_id"),
            F.lit("click").alias("event_type"),
            F.lit(42).cast("long").alias("user_id"),
            (F.col("id") % 1000).alias("item_id"),
            (F.lit(at(0)) + F.col("id") * 1000).alias("ts"),
        )
        rows = bronze_frame(spark, _reader(5)).drop("event_id", "event_type", "user_id", "item_id", "ts").limit(1)
        heavy = heavy.crossJoin(rows).withColumn("event_date", F.to_date(F.timestamp_millis("ts")))
        events = events_with_dwell(sessionized_events(deduplicated_events(heavy), 30), 30)
        flagged = flagged_events(events, population_reading(heavy), RULES)
        by_reason = {r["noise_reason"]: r["count"] for r in flagged.groupBy("noise_reason").count().collect()}
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)
    # A click every second for 17 hours: beyond human bounds, every one of them.
    assert by_reason == {"bot": n}


def test_flag_quality_from_confusion_counts():
    counts = [
        (None, "genuine", False, 90), (None, "genuine", True, 5), ("short_dwell", "genuine", True, 1),
        ("short_dwell", "accidental", True, 8), (None, "accidental", True, 2),
        ("burst", "human_burst", True, 4), ("bot", "bot", False, 10),
    ]
    q = flag_quality(counts)
    assert q["clicks"] == 120
    assert q["overall"] == {"precision": round(22 / 23, 4), "recall": round(22 / 24, 4),
                            "f1": round(2 * (22 / 23) * (22 / 24) / (22 / 23 + 22 / 24), 4), "flagged": 23, "actual": 24}
    assert q["per_kind"]["accidental"] == {"precision": round(8 / 9, 4), "recall": 0.8, "f1": round(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8), 4), "flagged": 9, "actual": 10}
    assert q["baseline_fixed_5s"]["flagged"] == 20
    assert q["baseline_fixed_5s"]["recall"] == round(14 / 24, 4)


@pytest.mark.parametrize("day_offset", [0, 1])
def test_flags_on_generated_days_beat_the_fixed_threshold(spark, cleaned_small_world, day_offset):
    from jobs.evaluate import denoise_quality

    day = cleaned_small_world.generator.start_date + dt.timedelta(days=day_offset)
    q = denoise_quality(spark, cleaned_small_world, day)
    assert q["overall"]["precision"] >= 0.9
    assert q["overall"]["recall"] >= 0.9
    assert q["overall"]["f1"] > q["baseline_fixed_5s"]["f1"]


def test_evaluate_command_ends_with_one_json_object(cleaned_small_world):
    import json
    import subprocess
    import sys
    from pathlib import Path

    day = cleaned_small_world.generator.start_date
    done = subprocess.run(
        [str(Path(sys.executable).parent / "seqlake"), "evaluate", "denoise", "--date", str(day), "--json",
         "--lakehouse", cleaned_small_world.lakehouse, "--truth", cleaned_small_world.truth,
         "--set", "spark.master=local[1]"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["date"] == str(day)
    assert set(figures["per_kind"]) == {"accidental", "human_burst", "bot"}
    assert figures["overall"]["f1"] > figures["baseline_fixed_5s"]["f1"]
