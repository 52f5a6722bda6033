"""Adapters for public formats: imported records meet ingest's rules, then clean runs unchanged."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from pipelines.lakehouse.tables import (
    BRONZE_EVENTS,
    BRONZE_EVENTS_REJECTED,
    GOLD_TRAINING_EXAMPLES,
    SILVER_EVENTS,
    table_uri,
)
from pipelines.stages.clean import clean_dates
from pipelines.stages.imports import import_source
from tests.conftest import TEST_DATA, settings_in


def _bronze(spark, settings):
    return spark.read.format("delta").load(table_uri(settings.lakehouse, BRONZE_EVENTS))


def _rejected(spark, settings) -> dict[str, str]:
    rows = spark.read.format("delta").load(table_uri(settings.lakehouse, BRONZE_EVENTS_REJECTED)).collect()
    return {r["raw"]: r["reason"] for r in rows}


def test_ebnerd_fixture_imports_every_impression_click_and_history_read(spark, tmp_path):
    folder = TEST_DATA / "ebnerd_fixture"
    behaviors = pd.read_parquet(folder / "behaviors.parquet")
    history = pd.read_parquet(folder / "history.parquet")
    expected = {
        "impression": int(behaviors["article_ids_inview"].map(len).sum()),
        "click": int(behaviors["article_ids_clicked"].map(len).sum() + history["article_id_fixed"].map(len).sum()),
    }
    settings = settings_in(tmp_path)
    figures = import_source(spark, settings, "ebnerd", str(folder))
    assert figures["records"] == sum(expected.values())
    assert (figures["bronze"], figures["rejected"]) == (sum(expected.values()), 0)
    bronze = _bronze(spark, settings)
    assert {r["event_type"]: r["count"] for r in bronze.groupBy("event_type").count().collect()} == expected

    # A history read's dwell and scroll depth are its own: the median read is the fixture's 15 s.
    reads = np.concatenate(history["read_time_fixed"].to_numpy())
    scrolls = np.concatenate(history["scroll_percentage_fixed"].to_numpy()).astype(float)
    past = bronze.where(F.col("event_id").startswith("eb-hist")).agg(
        F.percentile("dwell_ms", 0.5), F.count("scroll_pct"), F.sum("scroll_pct")).first()
    assert past[0] == np.median(np.round(reads * 1000))
    assert (past[1], past[2]) == (np.isfinite(scrolls).sum(), pytest.approx(np.nansum(scrolls)))

    # A click's dwell and scroll depth are those of the clicked article (next_*), not
    # of the page it was clicked on (read_time, scroll_percentage); with two
    # articles clicked, neither is said to be whose.
    single = behaviors[behaviors["article_ids_clicked"].map(len) == 1]
    expected_reads = {
        (f"eb-clk-{r.impression_id}-{r.article_ids_clicked[0]}"): (
            None if np.isnan(r.next_read_time) else round(r.next_read_time * 1000),
            None if np.isnan(r.next_scroll_percentage) else float(r.next_scroll_percentage))
        for r in single.itertuples()
    }
    clicked = {r["event_id"]: (r["dwell_ms"], r["scroll_pct"]) for r in bronze.where(
        F.col("event_id").startswith("eb-clk")).select("event_id", "dwell_ms", "scroll_pct").collect()}
    assert {k: v for k, v in clicked.items() if k in expected_reads} == expected_reads
    assert [v for k, v in clicked.items() if k not in expected_reads] == [(None, None)] * 2

    # Clean runs unchanged on an imported day, and carries the scroll depth to silver.
    day = behaviors["impression_time"].dt.date.max()
    clean_dates(spark, settings, day)
    silver = spark.read.format("delta").load(table_uri(settings.lakehouse, SILVER_EVENTS))
    clicks = silver.where((F.col("event_date") == F.lit(day)) & (F.col("event_type") == "click"))
    assert clicks.count() > 0
    dwell = {r["event_id"]: r["dwell_source"] for r in clicks.collect()}
    assert {k for k, v in dwell.items() if v == "observed"} == {k for k in dwell if clicked[k][0] is not None}
    assert {r["event_id"]: r["scroll_pct"] for r in clicks.collect()} == {k: clicked[k][1] for k in dwell}


def test_taobao_csv_maps_behaviors_and_quarantines_bad_lines(spark, tmp_path):
    t = int(dt.datetime(2017, 11, 25, 9, tzinfo=dt.UTC).timestamp())
    lines = [
        f"1,100,7,pv,{t}",
        f"1,101,7,pv,{t + 40}",
        f"1,101,7,cart,{t + 50}",
        f"1,101,7,fav,{t + 55}",
        f"1,101,7,buy,{t + 90}",
        f"1,101,7,buy,{t + 90}",  # the same line twice: one event id
        "2,200,8,pv",  # four fields
        f"2,200,8,like,{t}",  # unknown behavior
        "2,200,8,pv,yesterday",  # not a timestamp
        f"u3,300,9,pv,{t}",  # not a user id
    ]
    path = tmp_path / "UserBehavior.csv"
    path.write_text("\n".join(lines) + "\n")
    settings = settings_in(tmp_path)
    figures = import_source(spark, settings, "taobao", str(path))
    assert (figures["records"], figures["bronze"], figures["rejected"]) == (10, 6, 4)
    assert figures["rejected_by_reason"] == {"malformed_record": 1, "unknown_event_type": 1, "wrong_type": 2}
    assert _rejected(spark, settings)["2,200,8,pv"] == "malformed_record"
    bronze = _bronze(spark, settings)
    assert sorted(r["event_type"] for r in bronze.collect()) == ["buy", "buy", "cart", "click", "click", "fav"]
    assert bronze.select("event_id").distinct().count() == 5
    first_pv = bronze.where(F.col("item_id") == 100).first()
    assert (first_pv["user_id"], first_pv["category_id"], first_pv["ts"]) == (1, 7, t * 1000)

    # No dwell in the source: clean derives it from the next event in the session.
    clean_dates(spark, settings, dt.date(2017, 11, 25))
    silver = spark.read.format("delta").load(table_uri(settings.lakehouse, SILVER_EVENTS))
    assert silver.count() == 5
    derived = {r["item_id"]: (r["dwell_ms"], r["dwell_source"]) for r in silver.where(F.col("event_type") == "click").collect()}
    assert derived == {100: (40_000, "derived"), 101: (10_000, "derived")}


def test_kuairand_rows_are_exposures_and_clicks_with_play_time_as_dwell(spark, tmp_path):
    t = int(dt.datetime(2022, 4, 8, 12, tzinfo=dt.UTC).timestamp() * 1000)
    header = "user_id,video_id,date,hourmin,time_ms,is_click,is_like,play_time_ms,duration_ms,tab"
    rows = [
        f"0,10,20220408,1200,{t},1,0,21000,30000,1",
        f"0,11,20220408,1201,{t + 60_000},0,0,0,15000,1",
        f"1,12,20220408,1202,{t + 120_000},1,0,-5,9000,1",  # negative play time
        "1,13,20220408",  # a truncated row: its time is missing
    ]
    path = tmp_path / "log_standard_4_08_to_4_21_1k.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    settings = settings_in(tmp_path)
    figures = import_source(spark, settings, "kuairand", str(path))
    assert (figures["records"], figures["bronze"], figures["rejected"]) == (6, 4, 2)
    assert figures["rejected_by_reason"] == {"missing_field": 1, "negative_dwell": 1}
    bronze = {r["event_id"]: r for r in _bronze(spark, settings).collect()}
    click = bronze[f"kr-clk-0-10-{t}"]
    assert (click["event_type"], click["dwell_ms"], click["content_length"], click["ts"]) == ("click", 21000, 30, t)
    assert bronze[f"kr-imp-0-11-{t + 60_000}"]["content_length"] == 15
    assert sorted(bronze) == sorted([f"kr-imp-0-10-{t}", f"kr-clk-0-10-{t}", f"kr-imp-0-11-{t + 60_000}", f"kr-imp-1-12-{t + 120_000}"])


def test_mind_impressions_become_impressions_and_clicks(spark, tmp_path):
    lines = [
        "1\tU100\t11/15/2019 8:55:22 AM\tN1 N2 N3\tN10-1 N11-0 N12-0",
        "2\tU101\t11/15/2019 9:05:00 PM\t\tN13-0 N14-1",
        "3\tU102\tnot a time\tN4\tN15-0",
        "4\tU103\t11/15/2019 9:05:00 PM",  # missing columns
    ]
    path = tmp_path / "behaviors.tsv"
    path.write_text("\n".join(lines) + "\n")
    settings = settings_in(tmp_path)
    figures = import_source(spark, settings, "mind", str(path))
    assert (figures["records"], figures["bronze"], figures["rejected"]) == (9, 7, 2)
    assert figures["rejected_by_reason"] == {"malformed_record": 1, "wrong_type": 1}
    assert figures["history_entries_left_out"] == 4
    bronze = {r["event_id"]: r for r in _bronze(spark, settings).collect()}
    morning = int(dt.datetime(2019, 11, 15, 8, 55, 22, tzinfo=dt.UTC).timestamp() * 1000)
    assert (bronze["mind-clk-1-0"]["item_id"], bronze["mind-clk-1-0"]["user_id"], bronze["mind-clk-1-0"]["ts"]) == (10, 100, morning)
    assert bronze["mind-clk-2-1"]["position"] == 1
    assert sorted(k for k in bronze if k.startswith("mind-clk")) == ["mind-clk-1-0", "mind-clk-2-1"]


def test_reimporting_replaces_what_the_import_wrote_and_nothing_else(spark, tmp_path):
    day = 86_400
    t = int(dt.datetime(2017, 11, 26, 9, tzinfo=dt.UTC).timestamp())
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(f"1,100,7,pv,{t}\n1,101,7,pv,{t + 5}\n1,102,7,pv,{t + 3 * day}\n")
    second.write_text(f"2,200,8,pv,{t + 6 * day}\n")
    settings = settings_in(tmp_path)
    import_source(spark, settings, "taobao", str(first))
    import_source(spark, settings, "taobao", str(second), source="taobao-december")
    import_source(spark, settings, "taobao", str(first))

    def by_source():
        return [tuple(r) for r in _bronze(spark, settings).groupBy("source").count().orderBy("source").collect()]

    assert by_source() == [("taobao", 3), ("taobao-december", 1)]
    # A corrected file without the last date: the import's rows of that date go too, the other import's stay.
    first.write_text(f"1,100,7,pv,{t}\n")
    import_source(spark, settings, "taobao", str(first))
    assert by_source() == [("taobao", 1), ("taobao-december", 1)]


def _landing_night(spark, tmp_path, day: dt.date):
    """A lakehouse whose bronze holds one ingested landing date of two events."""
    import gzip
    import json

    from pipelines.clickstream.landing import landing_folder
    from pipelines.stages.ingest import ingest_date

    settings = settings_in(tmp_path)
    folder = tmp_path / landing_folder("landing", day)
    folder.mkdir(parents=True)
    noon = int(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp() * 1000)
    records = [{"event_id": f"e{i}", "event_type": "click", "user_id": 1, "item_id": i, "ts": noon + i} for i in range(2)]
    (folder / "part.jsonl.gz").write_bytes(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))
    ingest_date(spark, settings, day)
    return settings


def test_an_import_never_replaces_rows_of_another_source(spark, tmp_path):
    from deltalake import DeltaTable

    from pipelines.errors import OwnershipError

    day = dt.date(2017, 11, 27)
    settings = _landing_night(spark, tmp_path, day)
    generated = sorted(tuple(r) for r in _bronze(spark, settings).collect())
    version = DeltaTable(table_uri(settings.lakehouse, BRONZE_EVENTS)).version()

    # Dates of its own: imported beside the landing rows, which stay as they were.
    t = int(dt.datetime(2017, 11, 25, 9, tzinfo=dt.UTC).timestamp())
    path = tmp_path / "UserBehavior.csv"
    path.write_text(f"1,100,7,pv,{t}\n")
    assert import_source(spark, settings, "taobao", str(path))["bronze"] == 1
    assert sorted(tuple(r) for r in _bronze(spark, settings).where(F.col("source") == "landing").collect()) == generated

    # One row on the landing's date: refused, nothing written.
    path.write_text(f"1,100,7,pv,{t}\n2,200,8,pv,{t + 2 * 86_400}\n")
    version = DeltaTable(table_uri(settings.lakehouse, BRONZE_EVENTS)).version()
    with pytest.raises(OwnershipError, match="would write landing dates \\(2017-11-27\\) that hold rows of 'landing'; nothing was written"):
        import_source(spark, settings, "taobao", str(path))
    assert DeltaTable(table_uri(settings.lakehouse, BRONZE_EVENTS)).version() == version
    assert sorted(tuple(r) for r in _bronze(spark, settings).where(F.col("source") == "landing").collect()) == generated


def test_untimed_and_future_rows_are_rejected_on_the_imports_own_dates(spark, tmp_path):
    t = int(dt.datetime(2017, 11, 25, 9, tzinfo=dt.UTC).timestamp())
    lines = [
        f"1,100,7,pv,{t}",
        f"1,101,7,pv,{t + 2 * 86_400}",
        "2,200,8,pv,yesterday",  # no usable time: the import's oldest date
        "2,201,8,pv",  # no time at all: the oldest date
        f"2,202,8,pv,{int(dt.datetime(2099, 1, 1, tzinfo=dt.UTC).timestamp())}",  # the future: the newest date
    ]
    path = tmp_path / "UserBehavior.csv"
    path.write_text("\n".join(lines) + "\n")
    settings = settings_in(tmp_path)
    figures = import_source(spark, settings, "taobao", str(path))
    assert (figures["bronze"], figures["rejected"], figures["landing_dates"]) == (2, 3, "2017-11-25..2017-11-27")
    rejected = spark.read.format("delta").load(table_uri(settings.lakehouse, BRONZE_EVENTS_REJECTED))
    assert sorted((r["reason"], str(r["landing_date"])) for r in rejected.collect()) == [
        ("future_timestamp", "2017-11-27"), ("malformed_record", "2017-11-25"), ("wrong_type", "2017-11-25"),
    ]


def test_a_file_without_any_usable_time_is_refused(spark, tmp_path):
    path = tmp_path / "UserBehavior.csv"
    path.write_text("2,200,8,pv,yesterday\n")
    with pytest.raises(ValueError, match="no record has a usable event time"):
        import_source(spark, settings_in(tmp_path), "taobao", str(path))


def test_a_taobao_file_trains_through_implicit_feedback_examples(spark, tmp_path):
    from pipelines.stages.examples import build_examples
    from pipelines.stages.sequences import build_sequences

    start = dt.datetime(2017, 11, 25, 8, tzinfo=dt.UTC)
    lines = []
    for day in range(3):
        for user in range(1, 13):
            t = int((start + dt.timedelta(days=day, minutes=user * 7)).timestamp())
            for k in range(4):  # a short session: browse two items, cart one, browse another
                item = 1000 + (user * 3 + day * 5 + k) % 40
                lines.append(f"{user},{item},{item % 6},{'cart' if k == 2 else 'pv'},{t + k * 40}")
    path = tmp_path / "UserBehavior.csv"
    path.write_text("\n".join(lines) + "\n")
    settings = settings_in(tmp_path, "examples.negatives_per_positive=3")
    assert import_source(spark, settings, "taobao", str(path))["bronze"] == len(lines)
    first, last = dt.date(2017, 11, 25), dt.date(2017, 11, 27)
    clean_dates(spark, settings, first, last)
    build_sequences(spark, settings, first, last)
    figures = build_examples(spark, settings, first, last)
    assert set(figures["examples_by_mode"]) == {"implicit"}
    examples = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_TRAINING_EXAMPLES))
    of_last = examples.where(F.col("event_date") == F.lit(last))
    positives = of_last.where(F.col("label") == 1).count()
    assert positives == figures["examples"] - 3 * positives > 0  # three negatives per positive
    # Features as of the day before: the users' first two days of behavior.
    assert of_last.where(F.size("long_item_ids") > 0).count() == of_last.count()
