"""Clean: dedup, sessions, dwell and the two-stage noise flags, on hand-built bronze rows."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from pyspark.sql import functions as F

from pipelines.clickstream.clean import CleanWindow, prepared_events, silver_events
from pipelines.clickstream.denoise import one_sided_chi2_cut
from pipelines.clickstream.denoise_quality import flag_quality
from pipelines.clickstream.sessions import (
    deduplicated_events,
    events_with_dwell,
    sessionized_events,
)
from pipelines.config import CleanSettings, IngestSettings
from pipelines.lakehouse.tables import SILVER_EVENTS, SILVER_NOISE_METRICS, table_uri
from pipelines.lakehouse.writes import read_date_partitions
from pipelines.stages.clean import clean_dates
from tests.bronze_rows import T0, at, bronze_frame, write_bronze
from tests.conftest import settings_in

RULES = CleanSettings()
DAY = T0.date()
HOUR = 3600


def _flags(spark, rows: list[dict], rules: CleanSettings = RULES, day: dt.date = DAY) -> dict[str, str | None]:
    """noise_reason by event id for the clean run of `day` over `rows`."""
    window = CleanWindow.of(day, day, rules)
    events = prepared_events(bronze_frame(spark, rows), window, rules, IngestSettings())
    return {r["event_id"]: r["noise_reason"] for r in silver_events(events, window, rules).collect()}


def _jitter(*key: object) -> float:
    """A deterministic factor in [0.8, 1.25) for hand-built variety."""
    return math.exp(((hash(key) % 1000) / 1000 - 0.5) * 0.45)


def _reads(user: int, start_s: float, needs_s: dict[int, float], speed: float = 1.0, repeat: int = 1, day_offset: int = 0) -> list[dict]:
    """`user` reads every item of `needs_s` in one session (a read, then the next
    click 5 s after it ends), each read lasting need * speed * jitter."""
    rows, t = [], day_offset * 86_400 + start_s
    for r in range(repeat):
        for item, need in needs_s.items():
            dwell = need * speed * _jitter(user, item, r, day_offset)
            rows.append({"event_id": f"u{user}-i{item}-r{r}-d{day_offset}", "user_id": user, "item_id": item,
                         "ts": at(t), "dwell_ms": int(dwell * 1000)})
            t += dwell + 5
    return rows


NEEDS = {item: 10.0 + 8 * item for item in range(1, 11)}  # items 1..10 need 18 s .. 90 s


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


def test_short_dwell_is_judged_against_the_items_need_and_the_readers_speed(spark):
    # Forty readers read ten items needing 18 s to 90 s; reader 20 reads at 0.4x the time.
    rows = [r for user in range(1, 41) if user != 20 for r in _reads(user, 0, NEEDS)]
    rows += _reads(20, 0, NEEDS, speed=0.4, repeat=3)
    later = 2 * HOUR
    rows += [
        # Item 10 needs 90 s: 6 s is far too short for reader 1, and for reader 20 too.
        {"event_id": "bounce", "user_id": 1, "item_id": 10, "ts": at(later), "dwell_ms": 6_000},
        {"event_id": "fast_bounce", "user_id": 20, "item_id": 10, "ts": at(later + 100), "dwell_ms": 6_000},
        # 36 s is 40% of the need: short for reader 1, what reader 20 takes anyway.
        {"event_id": "skim", "user_id": 2, "item_id": 10, "ts": at(later + 200), "dwell_ms": 36_000},
        {"event_id": "fast_read", "user_id": 20, "item_id": 10, "ts": at(later + 300), "dwell_ms": 36_000},
        # A glance (under glance_s) and an unknown dwell are not judged.
        {"event_id": "glance", "user_id": 3, "item_id": 10, "ts": at(later + 400), "dwell_ms": 400},
        {"event_id": "unknown", "user_id": 4, "item_id": 10, "ts": at(later + 500 + 40 * 60), "dwell_ms": None},
    ]
    flags = _flags(spark, rows)
    judged = {"bounce", "fast_bounce", "skim", "fast_read", "glance", "unknown"}
    assert {k: v for k, v in flags.items() if k in judged} == {
        "bounce": "short_dwell", "fast_bounce": "short_dwell", "skim": "short_dwell",
        "fast_read": None, "glance": None, "unknown": None,
    }
    # The cut is the lowest short_dwell_tail of a normal fit: the population's own
    # reads reach it about that often, not more.
    population = [v for k, v in flags.items() if k not in judged]
    assert sum(v is not None for v in population) <= 2 * RULES.short_dwell_tail * len(population)


def test_bursts_need_enough_rapid_clicks_in_a_row(spark):
    reader = _reads(1, 0, NEEDS, repeat=2)
    burst = [{"event_id": f"b{i}", "ts": at(3 * HOUR + i * 1.2), "dwell_ms": int(NEEDS[i + 1] * 1000), "item_id": i + 1} for i in range(5)]
    too_few = [{"event_id": f"t{i}", "ts": at(4 * HOUR + i * 1.2), "dwell_ms": int(NEEDS[i + 1] * 1000), "item_id": i + 1} for i in range(3)]
    flags = _flags(spark, reader + burst + too_few)
    assert {k for k, v in flags.items() if v == "burst"} == {f"b{i}" for i in range(5)}
    assert all(flags[f"t{i}"] is None for i in range(3))


def _user_day(user: int, clicks: int, impressions: int, gaps_s: list[float], start_hours: list[float]) -> list[dict]:
    """`clicks` clicks spread over sessions starting at `start_hours`, cycling
    through `gaps_s` between clicks, plus `impressions` impressions."""
    rows, per_session = [], -(-clicks // len(start_hours))
    for i in range(clicks):
        session, k = divmod(i, per_session)
        t = start_hours[session] * HOUR + sum(gaps_s[j % len(gaps_s)] for j in range(i - k, i))
        rows.append({"event_id": f"c{user}-{i}", "user_id": user, "item_id": 1000 + i, "ts": at(t), "dwell_ms": 20_000})
    for i in range(impressions):
        rows.append({"event_id": f"i{user}-{i}", "event_type": "impression", "user_id": user, "item_id": 1000 + i,
                     "ts": at(start_hours[0] * HOUR - 60 + i * 0.01)})
    return rows


def test_bot_user_days_are_outliers_of_the_same_days_population(spark):
    humans = []
    for user in range(1, 41):
        clicks = 3 + user % 13
        ctr = 0.06 + (user % 7) * 0.017
        humans += _user_day(user, clicks, int(clicks / ctr), [25 + user % 5 * 30, 90, 40 + user % 3 * 200, 15],
                            [1 + user % 6 * 0.4 + h * 2.2 for h in range(1 + user % 3)])
    heavy_reader = _user_day(41, 40, 330, [30, 200, 45, 900, 60], [7, 10, 13, 19])
    scraper = _user_day(42, 200, 250, [3.0, 3.4, 2.7, 3.2, 2.9], [4])
    human_like_bot = _user_day(43, 150, 300, [20, 90, 12, 240, 35], [h + 0.5 for h in range(0, 23, 2)])
    # Ten times anyone's clicks, over sixteen hours, but at a person's click-through and rhythm.
    heavy_human = _user_day(44, 400, 4000, [30, 200, 45, 900, 60, 25], [6 + h for h in range(16)])
    flags = _flags(spark, humans + heavy_reader + scraper + human_like_bot + heavy_human)
    bots = {k.split("-")[0] for k, v in flags.items() if v == "bot"}
    assert bots == {"c42", "c43"}
    assert all(flags[f"c42-{i}"] == "bot" for i in range(200))


def test_the_bot_limit_is_a_tail_probability_of_independent_normal_features():
    # One feature: P(z > c^0.5) = alpha, the one-sided normal quantile squared.
    assert one_sided_chi2_cut(1, 0.05) == pytest.approx(1.6449**2, rel=1e-3)
    assert one_sided_chi2_cut(4, 1e-4) > one_sided_chi2_cut(1, 1e-4)


def test_impressions_are_never_flagged(spark):
    rows = [{"event_id": f"i{i}", "event_type": "impression", "ts": at(i * 0.1)} for i in range(50)]
    assert set(_flags(spark, rows).values()) == {None}


def test_flags_of_a_date_do_not_depend_on_later_dates(spark):
    earlier = [r for user in range(1, 15) for r in _reads(user, user * HOUR, NEEDS, day_offset=-1)]
    earlier += [{"event_id": "short", "user_id": 1, "item_id": 10, "ts": at(-12 * HOUR), "dwell_ms": 5_000}]
    # On DAY, user 1 reads everything very slowly and a crowd rushes through item 10.
    slow = _reads(1, 2 * HOUR, NEEDS, speed=4.0, repeat=3)
    rush = [{"event_id": f"rush{u}", "user_id": 100 + u, "item_id": 10, "ts": at(5 * HOUR + u), "dwell_ms": 4_000} for u in range(40)]
    alone = {k: v for k, v in _flags(spark, earlier, day=DAY).items() if k in {r["event_id"] for r in earlier}}
    with_later = {k: v for k, v in _flags(spark, earlier + slow + rush, day=DAY).items() if k in alone}
    assert alone == with_later
    assert alone["short"] == "short_dwell"
    assert {r["ts"] // 86_400_000 for r in earlier} == {(T0.timestamp() - 86_400) // 86_400}


def test_clean_job_conserves_events_and_is_idempotent_across_late_data(spark, tmp_path):
    settings = settings_in(tmp_path)
    late = {"event_id": "late", "ts": at(3600), "landing_date": DAY + dt.timedelta(days=1), "dwell_ms": 20_000, "content_length": 80}
    day_rows = _reads(1, 0, dict(list(NEEDS.items())[:8])) + [
        {"event_id": "u1-i1-r0-d0", "source_file": "redelivered.jsonl"},  # duplicate, same landing day
        {"event_id": "imp", "event_type": "impression", "ts": at(30)},
    ]
    next_rows = [late, {**late, "source_file": "again.jsonl"}, {"event_id": "n1", "ts": at(86_400 + 60), "dwell_ms": 20_000, "content_length": 80}]
    write_bronze(spark, settings, day_rows, DAY)

    first = clean_dates(spark, settings, DAY)
    assert (first["bronze_rows"], first["duplicates_dropped"], first["silver_rows"]) == (10, 1, 9)

    def silver():
        return sorted(tuple(r) for r in spark.read.format("delta").load(table_uri(settings.lakehouse, SILVER_EVENTS)).collect())

    snapshot = silver()
    second = clean_dates(spark, settings, DAY)
    assert {**second, "seconds": 0} == {**first, "seconds": 0}
    assert silver() == snapshot

    # The late event and its duplicate land the next day; cleaning that day puts
    # exactly one copy into the earlier event date's partition.
    write_bronze(spark, settings, next_rows, DAY + dt.timedelta(days=1))
    later = clean_dates(spark, settings, DAY + dt.timedelta(days=1))
    assert later["silver_rows"] == 9 + 1 + 1
    day_partition = read_date_partitions(spark, settings.lakehouse, SILVER_EVENTS, DAY)
    assert day_partition.where(F.col("event_id") == "late").count() == 1
    assert day_partition.count() == 10
    metrics = read_date_partitions(spark, settings.lakehouse, SILVER_NOISE_METRICS, DAY)
    assert metrics.agg(F.sum("events")).first()[0] == 10
    # Rerunning the earlier night after the later one keeps the late event it brought.
    clean_dates(spark, settings, DAY)
    assert read_date_partitions(spark, settings.lakehouse, SILVER_EVENTS, DAY).where(F.col("event_id") == "late").count() == 1


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
            (F.lit(at(-8 * HOUR)) + F.col("id") * 1000).alias("ts"),
            F.lit(25_000).cast("long").alias("dwell_ms"),
        )
        template = bronze_frame(spark, [{}]).drop("event_id", "event_type", "user_id", "item_id", "ts", "dwell_ms", "event_date")
        heavy = heavy.crossJoin(template).withColumn("event_date", F.to_date(F.timestamp_millis("ts")))
        humans = bronze_frame(spark, [r for user in range(1, 30) for r in _reads(user, user * 600, NEEDS, repeat=1 + user % 3)])
        window = CleanWindow.of(DAY, DAY, RULES)
        events = prepared_events(heavy.unionByName(humans), window, RULES, IngestSettings())
        flagged = silver_events(events, window, RULES).where(F.col("user_id") == 42)
        by_reason = {r["noise_reason"]: r["count"] for r in flagged.groupBy("noise_reason").count().collect()}
    finally:
        for key, value in previous.items():
            spark.conf.set(key, value)
    # A click every second for 17 hours: beyond human bounds, every one of them.
    assert by_reason == {"bot": n}


def test_flag_quality_and_the_hindsight_threshold_from_confusion_counts():
    # (flag, truth, half-second step of dwell, clicks): step 2 is 1.0-1.5 s, 19 is 9.5 s or more.
    counts = [
        (None, "genuine", 19, 90), (None, "genuine", 5, 5), ("short_dwell", "genuine", 2, 1),
        ("short_dwell", "accidental", 2, 8), (None, "accidental", 3, 2),
        ("burst", "human_burst", 1, 4), ("bot", "bot", None, 10),
    ]
    q = flag_quality(counts)
    assert q["clicks"] == 120
    assert q["overall"] == {"precision": round(22 / 23, 4), "recall": round(22 / 24, 4),
                            "f1": round(2 * (22 / 23) * (22 / 24) / (22 / 23 + 22 / 24), 4), "flagged": 23, "actual": 24}
    assert q["per_kind"]["accidental"] == {"precision": round(8 / 9, 4), "recall": 0.8, "f1": round(2 * (8 / 9) * 0.8 / (8 / 9 + 0.8), 4), "flagged": 9, "actual": 10}
    # Under 5 s: steps 1, 2, 3 and 5 -> 20 clicks, 14 of them noise.
    assert (q["baseline_fixed_5s"]["flagged"], q["baseline_fixed_5s"]["recall"]) == (20, round(14 / 24, 4))
    # With hindsight, 2.0 s (steps 1-3: 15 clicks, 14 noise) beats every other threshold of the grid.
    assert q["hindsight_fixed"]["threshold_s"] == 2.0
    assert (q["hindsight_fixed"]["flagged"], q["hindsight_fixed"]["precision"]) == (15, round(14 / 15, 4))
    assert q["f1_gain_over_hindsight"] == round(q["overall"]["f1"] - q["hindsight_fixed"]["f1"], 4)


def test_rule_settings_are_validated_naming_the_key():
    from pipelines.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match="^clean.short_dwell_tail: "):
        load_settings(env="local", overrides=["clean.short_dwell_tail=0.7"])


@pytest.mark.parametrize("day_index", [1, 2, 3])
def test_flags_on_generated_days_beat_the_hindsight_threshold(spark, generated_nights, day_index):
    from pipelines.stages.evaluate import denoise_quality

    q = denoise_quality(spark, generated_nights.nightly, generated_nights.days[day_index])
    assert q["overall"]["precision"] >= 0.75
    assert q["overall"]["f1"] >= q["hindsight_fixed"]["f1"] + 0.05


def test_evaluate_command_ends_with_one_json_object(generated_nights):
    import json
    import subprocess
    import sys
    from pathlib import Path

    settings, day = generated_nights.nightly, generated_nights.days[1]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "seqlake"), "evaluate", "denoise", "--date", str(day), "--json",
         "--lakehouse", settings.lakehouse, "--truth", settings.truth,
         "--set", "spark.master=local[1]"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["date"] == str(day)
    assert set(figures["per_kind"]) == {"accidental", "human_burst", "bot"}
    assert figures["hindsight_fixed"]["threshold_s"] in [t / 2 for t in range(2, 21)]


def test_quantiles_of_large_groups_come_from_a_histogram_and_ignore_row_order(spark):
    from pipelines.clickstream.quantiles import binned_quantiles

    rows = [(day, float(v), float(-v)) for day in ("a", "b") for v in range(1, 101)]
    forward = spark.createDataFrame(rows, "day string, x double, y double")
    backward = spark.createDataFrame(list(reversed(rows)), "day string, x double, y double").repartition(7)
    expected = {
        "a": {"x_p25": 25.005, "x_p50": 50.005, "y_p25": -75.995, "y_p50": -50.995},
        "b": {"x_p25": 25.005, "x_p50": 50.005, "y_p25": -75.995, "y_p50": -50.995},
    }
    for frame in (forward, backward):
        got = {r["day"]: {k: round(v, 6) for k, v in r.asDict().items() if k != "day"}
               for r in binned_quantiles(frame, "day", ["x", "y"], [0.25, 0.5]).collect()}
        assert got == expected
