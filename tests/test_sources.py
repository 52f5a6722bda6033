"""Adapters for public formats: imported records meet ingest's rules, then clean runs unchanged."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from jobs.clean_events import clean_dates
from jobs.import_source import import_source
from pipelines.lakehouse.tables import (
    BRONZE_EVENTS,
    BRONZE_EVENTS_REJECTED,
    SILVER_EVENTS,
    table_uri,
)
from tests.conftest import TEST_DATA, settings_in

FALLBACK = dt.date(2030, 1, 1)


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
    figures = import_source(spark, settings, "ebnerd", str(folder), FALLBACK)
    assert figures["records"] == sum(expected.values())
    assert (figures["bronze"], figures["rejected"]) == (sum(expected.values()), 0)
    bronze = _bronze(spark, settings)
    assert {r["event_type"]: r["count"] for r in bronze.groupBy("event_type").count().collect()} == expected

    # read_time is the dwell: the median of the history reads is the fixture's 15 s.
    reads = np.concatenate(history["read_time_fixed"].to_numpy())
    history_dwell = bronze.where(F.col("event_id").startswith("eb-hist")).select(
        F.percentile("dwell_ms", 0.5)
    ).first()[0]
    assert history_dwell == np.median(np.round(reads * 1000))

    # Clean runs unchanged on an imported day.
    day = behaviors["impression_time"].dt.date.max()
    clean_dates(spark, settings, day)
    silver = spark.read.format("delta").load(table_uri(settings.lakehouse, SILVER_EVENTS))
    clicks = silver.where((F.col("event_date") == F.lit(day)) & (F.col("event_type") == "click"))
    assert clicks.count() > 0
    assert {r[0] for r in clicks.select("dwell_source").distinct().collect()} == {"observed"}


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
    figures = import_source(spark, settings, "taobao", str(path), FALLBACK)
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
    figures = import_source(spark, settings, "kuairand", str(path), FALLBACK)
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
    figures = import_source(spark, settings, "mind", str(path), FALLBACK)
    assert (figures["records"], figures["bronze"], figures["rejected"]) == (9, 7, 2)
    assert figures["rejected_by_reason"] == {"malformed_record": 1, "wrong_type": 1}
    assert figures["history_entries_left_out"] == 4
    bronze = {r["event_id"]: r for r in _bronze(spark, settings).collect()}
    morning = int(dt.datetime(2019, 11, 15, 8, 55, 22, tzinfo=dt.UTC).timestamp() * 1000)
    assert (bronze["mind-clk-1-0"]["item_id"], bronze["mind-clk-1-0"]["user_id"], bronze["mind-clk-1-0"]["ts"]) == (10, 100, morning)
    assert bronze["mind-clk-2-1"]["position"] == 1
    assert sorted(k for k in bronze if k.startswith("mind-clk")) == ["mind-clk-1-0", "mind-clk-2-1"]


def test_reimporting_replaces_instead_of_appending(spark, tmp_path):
    t = int(dt.datetime(2017, 11, 26, 9, tzinfo=dt.UTC).timestamp())
    path = tmp_path / "UserBehavior.csv"
    path.write_text(f"1,100,7,pv,{t}\n1,101,7,pv,{t + 5}\n")
    settings = settings_in(tmp_path)
    import_source(spark, settings, "taobao", str(path), FALLBACK)
    import_source(spark, settings, "taobao", str(path), FALLBACK)
    assert _bronze(spark, settings).count() == 2
