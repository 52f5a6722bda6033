"""Ingest: every landed line becomes a bronze row or a rejected row with its reason."""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from pipelines.clickstream.ingest import (
    classified_landing_records,
    conflicting_event_ids,
    with_conflicts_rejected,
)
from pipelines.clickstream.landing import landing_folder
from pipelines.clickstream.publish import unfinished_ingests
from pipelines.config import IngestSettings
from pipelines.errors import ConservationError, IncompleteRunError, MissingInputError
from pipelines.lakehouse.files import delta_dataset
from pipelines.lakehouse.tables import BRONZE_EVENTS, BRONZE_EVENTS_REJECTED, table_uri
from pipelines.lakehouse.writes import read_date_partitions
from pipelines.stages.ingest import ingest_date
from tests.conftest import settings_in

DAY = dt.date(2026, 11, 2)
NOON_MS = int(dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC).timestamp() * 1000)
VALID = {
    "event_id": "e1", "event_type": "click", "user_id": 7, "item_id": 70, "ts": NOON_MS,
    "category_id": 3, "impression_id": "i1", "position": 2, "dwell_ms": 15000, "content_length": 80,
}


_EVENT_IDS = itertools.count(1)


def _line(**changes) -> str:
    """VALID with `changes` (... drops a field), under an event id of its own unless one is given."""
    record = {k: v for k, v in {**VALID, "event_id": f"e{next(_EVENT_IDS)}", **changes}.items() if v is not ...}
    return json.dumps(record)


CASES = [
    ("valid", _line(), None, None),
    ("valid impression without dwell", _line(event_type="impression", dwell_ms=None), None, None),
    ("unknown extra field", _line(browser="firefox"), None, None),
    ("numeric string", _line(user_id="7"), None, None),
    ("blank line", "   ", "empty_record", None),
    ("UTF-16 read as UTF-8", '\x00{\x00"\x00e\x00', "invalid_encoding", "NUL bytes (UTF-16?)"),
    ("NUL byte inside a value", _line().replace("click", "cl\x00ick"), "invalid_encoding", "NUL bytes (UTF-16?)"),
    ("NUL escaped in JSON", _line(event_type="cl\x00ick"), "unknown_event_type", "cl\x00ick"),
    ("truncated", _line()[:40], "malformed_record", None),
    ("not an object", "[1, 2, 3]", "malformed_record", None),
    ("a key written twice", _line().replace('"user_id": 7', '"user_id": 7, "user_id": 8'), "duplicate_key", "user_id"),
    ("a nested key twice is the value's own", _line(browser={"v": 1}).replace('"v": 1', '"v": 1, "v": 2'), None, None),
    ("longer than max_record_bytes", _line(impression_id="x" * 1000), "oversized_record", str(len(_line(impression_id="x" * 1000)))),
    ("missing user_id", _line(user_id=...), "missing_field", "user_id"),
    ("missing two", _line(event_id=..., ts=...), "missing_field", "event_id,ts"),
    ("null required", _line(item_id=None), "missing_field", "item_id"),
    ("text user_id", _line(user_id="u-7"), "wrong_type", "user_id"),
    ("float item_id", _line(item_id=12.5), "wrong_type", "item_id"),
    ("boolean dwell", _line(dwell_ms=True), "wrong_type", "dwell_ms"),
    ("object position", _line(position={"x": 1}), "wrong_type", "position"),
    ("unknown type", _line(event_type="hover"), "unknown_event_type", "hover"),
    ("case matters", _line(event_type="Click"), "unknown_event_type", "Click"),
    ("negative dwell", _line(dwell_ms=-5), "negative_dwell", "-5"),
    ("future", _line(ts=NOON_MS + 2 * 86_400_000), "future_timestamp", str(NOON_MS + 2 * 86_400_000)),
    ("stale", _line(ts=NOON_MS - 30 * 86_400_000), "stale_timestamp", str(NOON_MS - 30 * 86_400_000)),
    ("late but within lateness", _line(ts=NOON_MS - 3 * 86_400_000), None, None),
    ("within clock skew", _line(ts=NOON_MS + 12 * 3_600_000 + 30 * 60_000), None, None),
    ("a byte order mark before the record", "\ufeff" + _line(event_id="bom"), None, None),
    ("ISO time with its zone", _line(event_id="iso-z", ts="2026-11-02T13:00:00+01:00"), None, None),
    ("ISO time without a zone", _line(ts="2026-11-02T12:00:00"), "ambiguous_timestamp", "2026-11-02T12:00:00"),
    ("epoch seconds", _line(ts=NOON_MS // 1000), "wrong_time_unit", "seconds"),
    ("epoch microseconds", _line(ts=NOON_MS * 1000), "wrong_time_unit", "microseconds"),
    ("epoch nanoseconds", _line(ts=NOON_MS * 1_000_000), "wrong_time_unit", "nanoseconds"),
    ("an id past int64", _line(user_id=2**63), "wrong_type", "user_id"),
    ("NaN dwell", _line().replace('"dwell_ms": 15000', '"dwell_ms": NaN'), "wrong_type", "dwell_ms"),
    ("an object as the event id", _line(event_id={"id": "e1"}), "wrong_type", "event_id"),
    ("a text that looks like an array", _line(event_id="[e]"), None, None),
    ("an event id with two contents", _line(event_id="twice", dwell_ms=1), "conflicting_event_id", "2 copies that differ"),
    ("... the other", _line(event_id="twice", dwell_ms=2), "conflicting_event_id", "2 copies that differ"),
    ("an event delivered twice, the same", _line(event_id="again"), None, None),
    ("... its copy", _line(event_id="again"), None, None),
]


def test_each_record_gets_exactly_its_expected_reason(spark):
    raw = spark.createDataFrame(
        [(line, "landing", f"case-{i}", DAY) for i, (_, line, _, _) in enumerate(CASES)],
        "raw string, source string, source_file string, landing_date date",
    )
    rules = IngestSettings(max_lateness_days=7, max_clock_skew_minutes=60, max_record_bytes=1000)
    classified = classified_landing_records(raw, dt.datetime(2026, 11, 3, 1), rules)
    got = {
        row["source_file"]: (row["reason"], row["reason_detail"])
        for row in with_conflicts_rejected(classified, conflicting_event_ids(classified))
        .select("source_file", "reason", "reason_detail")
        .collect()
    }
    expected = {f"case-{i}": (reason, detail) for i, (_, _, reason, detail) in enumerate(CASES)}
    assert got == expected


def test_valid_records_are_typed_with_event_time_and_landing_date(spark):
    raw = spark.createDataFrame(
        [(_line(ts=NOON_MS - 86_400_000), "landing", "f", DAY)], "raw string, source string, source_file string, landing_date date"
    )
    row = classified_landing_records(raw, dt.datetime(2026, 11, 3), IngestSettings()).first()
    assert (row["user_id"], row["item_id"], row["dwell_ms"], row["position"]) == (7, 70, 15000, 2)
    # A late event keeps its own event time but belongs to the folder it landed in.
    assert row["event_date"] == dt.date(2026, 11, 1)
    assert row["landing_date"] == DAY
    assert row["event_ts"] == dt.datetime(2026, 11, 1, 12)


def test_an_iso_time_with_its_zone_is_the_instant_it_names(spark):
    raw = spark.createDataFrame(
        [(_line(ts="2026-11-02T13:30:00+01:00"), "landing", "f", DAY)], "raw string, source string, source_file string, landing_date date")
    row = classified_landing_records(raw, dt.datetime(2026, 11, 3), IngestSettings()).first()
    assert (row["reason"], row["ts"], row["event_ts"]) == (None, NOON_MS + 30 * 60_000, dt.datetime(2026, 11, 2, 12, 30))


def _write_landing(settings, day: dt.date, files: dict[str, list[str]]) -> None:
    folder = Path(landing_folder(settings.landing, day))
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (folder / name).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))


def test_conservation_and_reasons_match_the_generators_truth(spark, small_world):
    deliveries = pd.read_parquet(f"{small_world.truth}/deliveries")
    for day in (small_world.generator.start_date, small_world.generator.start_date + dt.timedelta(days=1)):
        figures = ingest_date(spark, small_world, day)
        truth = deliveries[deliveries["landing_date"].astype(str) == day.isoformat()]
        assert figures["landed"] == len(truth)
        assert figures["landed"] == figures["bronze"] + figures["rejected"]
        assert figures["rejected_by_reason"] == truth["malformation"].value_counts().sort_index().to_dict()
    bronze = spark.read.format("delta").load(table_uri(small_world.lakehouse, BRONZE_EVENTS))
    late = bronze.where(F.col("event_date") < F.col("landing_date")).count()
    assert late > 0
    assert bronze.where(~F.col("source_file").endswith(".jsonl.gz")).count() == 0


def test_ingesting_a_date_twice_replaces_it(spark, tmp_path):
    settings = settings_in(tmp_path)
    _write_landing(settings, DAY, {"a.jsonl.gz": [_line(event_id=f"e{i}") for i in range(5)] + ["{oops"]})
    _write_landing(settings, DAY + dt.timedelta(days=1), {"b.jsonl.gz": [_line(event_id="x", ts=NOON_MS + 86_400_000)]})
    ingest_date(spark, settings, DAY + dt.timedelta(days=1))

    def content():
        frames = {}
        for table in (BRONZE_EVENTS, BRONZE_EVENTS_REJECTED):
            df = spark.read.format("delta").load(table_uri(settings.lakehouse, table)).drop("ingest_ts")
            frames[table.name] = sorted(tuple(r) for r in df.collect())
        return frames

    first = ingest_date(spark, settings, DAY)
    before = content()
    second = ingest_date(spark, settings, DAY)
    assert content() == before
    assert (first["landed"], first["bronze"], first["rejected"]) == (second["landed"], second["bronze"], second["rejected"]) == (6, 5, 1)
    # The other date's partition is untouched by the reruns.
    assert read_date_partitions(spark, settings.lakehouse, BRONZE_EVENTS, DAY + dt.timedelta(days=1)).count() == 1
    history = DeltaTable(table_uri(settings.lakehouse, BRONZE_EVENTS)).history()
    assert [h["operation"] for h in history[:2]] == ["WRITE", "WRITE"]


def test_an_event_id_landed_again_later_with_other_contents_is_rejected_and_the_first_landing_stays(spark, tmp_path):
    settings = settings_in(tmp_path)
    next_day = DAY + dt.timedelta(days=1)
    _write_landing(settings, DAY, {"a.jsonl.gz": [_line(event_id="changed"), _line(event_id="resent"), _line(event_id="reused")]})
    # A day later: the same two events of DAY again (one with another dwell,
    # one the same) and an event of its own day under an id DAY used.
    _write_landing(settings, next_day, {"b.jsonl.gz": [
        _line(event_id="changed", dwell_ms=1), _line(event_id="resent"), _line(event_id="reused", ts=NOON_MS + 86_400_000),
    ]})
    ingest_date(spark, settings, DAY)
    figures = ingest_date(spark, settings, next_day)

    assert (figures["landed"], figures["bronze"], figures["rejected_by_reason"]) == (3, 2, {"conflicting_event_id": 1})
    rejected = spark.read.format("delta").load(table_uri(settings.lakehouse, BRONZE_EVENTS_REJECTED)).collect()
    assert [(r["landing_date"], json.loads(r["raw"])["dwell_ms"], r["reason_detail"]) for r in rejected] == [
        (next_day, 1, "landed on 2026-11-02 with other contents")]
    bronze = spark.read.format("delta").load(table_uri(settings.lakehouse, BRONZE_EVENTS))
    assert sorted((r["landing_date"], r["event_id"], r["dwell_ms"]) for r in bronze.collect()) == [
        (DAY, "changed", 15000), (DAY, "resent", 15000), (DAY, "reused", 15000),
        # An id used again for an event of another day is not a late copy: only late events are compared.
        (next_day, "resent", 15000), (next_day, "reused", 15000),
    ]


def test_tables_are_real_delta_tables_readable_without_spark(spark, tmp_path):
    settings = settings_in(tmp_path)
    _write_landing(settings, DAY, {"a.jsonl.gz": [_line(), _line(event_id="e2", dwell_ms=-1)]})
    ingest_date(spark, settings, DAY)
    for table, rows in ((BRONZE_EVENTS, 1), (BRONZE_EVENTS_REJECTED, 1)):
        uri = table_uri(settings.lakehouse, table)
        assert (Path(uri) / "_delta_log").is_dir()
        delta = DeltaTable(uri)
        assert delta.metadata().partition_columns == ["landing_date"]
        assert sum(b.num_rows for b in delta_dataset(delta).to_batches()) == rows


def test_every_file_under_a_landing_folder_is_read_or_quarantined_whole(spark, tmp_path):
    settings = settings_in(tmp_path)
    folder = Path(landing_folder(settings.landing, DAY))
    (folder / "hour=03").mkdir(parents=True)
    whole = gzip.compress((_line(event_id="g1") + "\n" + _line(event_id="g2") + "\n").encode())
    files = {
        "good.jsonl.gz": whole,
        "hour=03/deeper.jsonl": (_line(event_id="d1", browser="firefox") + "\n").encode(),
        "not-gzip.jsonl.gz": (_line(event_id="n1") + "\n").encode(),
        "truncated.jsonl.gz": whole[: len(whole) // 2],
        "latin-1.jsonl": _line(event_id="caf_").replace("caf_", "caf\xe9").encode("latin-1") + b"\n",
        "utf-16.jsonl": (_line(event_id="u1") + "\n").encode("utf-16"),
        "empty.jsonl": b"",
        "_SUCCESS": b"",
        ".upload-in-progress.jsonl": (_line(event_id="p1") + "\n").encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)

    figures = ingest_date(spark, settings, DAY)

    assert (figures["landed"], figures["bronze"], figures["rejected"]) == (8, 3, 5)
    assert figures["rejected_by_reason"] == {"invalid_encoding": 3, "unreadable_file": 2}
    assert figures["unknown_fields"] == {"browser": 1}
    assert (figures["files_read"], [Path(f).name for f in figures["files_skipped"]]) == (5, [".upload-in-progress.jsonl", "_SUCCESS"])
    assert {Path(f).name: why for f, why in figures["files_unreadable"].items()} == {
        "not-gzip.jsonl.gz": "java.io.IOException: not a gzip file",
        "truncated.jsonl.gz": "java.io.EOFException: Unexpected end of input stream",
    }
    bronze = read_date_partitions(spark, settings.lakehouse, BRONZE_EVENTS, DAY)
    assert sorted((r["event_id"], Path(r["source_file"]).name) for r in bronze.collect()) == [
        ("d1", "deeper.jsonl"), ("g1", "good.jsonl.gz"), ("g2", "good.jsonl.gz")]
    rejected = sorted(
        (Path(r["source_file"]).name, r["reason"], r["reason_detail"], r["raw"])
        for r in read_date_partitions(spark, settings.lakehouse, BRONZE_EVENTS_REJECTED, DAY).collect()
    )
    latin, *utf16 = [r for r in rejected if r[1] == "invalid_encoding"]
    assert latin[:3] == ("latin-1.jsonl", "invalid_encoding", "bytes that are not UTF-8") and "caf\ufffd" in latin[3]
    # UTF-16 split on its newline bytes: the record's line and the newline's second byte.
    assert [r[:3] for r in utf16] == [("utf-16.jsonl", "invalid_encoding", "NUL bytes (UTF-16?)")] * 2
    assert [r for r in rejected if r[1] == "unreadable_file"] == [
        ("not-gzip.jsonl.gz", "unreadable_file", "java.io.IOException: not a gzip file", None),
        ("truncated.jsonl.gz", "unreadable_file", "java.io.EOFException: Unexpected end of input stream", None),
    ]
    # Whatever bytes arrived, the standard readers read both tables.
    for table in (BRONZE_EVENTS, BRONZE_EVENTS_REJECTED):
        frame = delta_dataset(DeltaTable(table_uri(settings.lakehouse, table))).to_table().to_pandas()
        assert len(frame) == {BRONZE_EVENTS: 3, BRONZE_EVENTS_REJECTED: 5}[table]


def test_missing_landing_folder_is_a_clear_error(spark, tmp_path):
    settings = settings_in(tmp_path)
    with pytest.raises(MissingInputError, match="no landing files for 2026-11-02"):
        ingest_date(spark, settings, DAY)


def test_a_row_lost_between_read_and_write_stops_the_job(spark, tmp_path, monkeypatch):
    import pipelines.clickstream.publish as publish

    settings = settings_in(tmp_path)
    _write_landing(settings, DAY, {"a.jsonl.gz": [_line(event_id=f"e{i}") for i in range(3)] + ["{oops"]})
    losing = publish.bronze_events
    monkeypatch.setattr(publish, "bronze_events", lambda classified: losing(classified).where(F.col("event_id") != "e1"))
    with pytest.raises(ConservationError, match="landed 4 != bronze 2 \\+ rejected 1"):
        ingest_date(spark, settings, DAY)
    # The job left no ledger row: what it wrote counts as unfinished until a rerun.
    monkeypatch.undo()
    assert unfinished_ingests(spark, settings.lakehouse, F.lit(True)) == [("landing", DAY)]
    assert ingest_date(spark, settings, DAY)["healed"] is True


def test_a_crash_between_the_two_commits_is_detected_and_healed_by_the_rerun(spark, tmp_path, monkeypatch):
    import pipelines.clickstream.publish as publish
    from pipelines.stages.clean import clean_dates

    settings = settings_in(tmp_path)
    _write_landing(settings, DAY, {"a.jsonl.gz": [_line(event_id=f"e{i}") for i in range(3)] + ["{oops"]})
    first = ingest_date(spark, settings, DAY)
    assert (first["bronze"], first["rejected"], first["healed"]) == (3, 1, False)

    # The folder is redelivered with more records; the run dies after bronze committed.
    _write_landing(settings, DAY, {"a.jsonl.gz": [_line(event_id=f"e{i}") for i in range(5)] + ["{oops", "{again"]})
    writes = publish.replace_where

    def die_on_rejected(df, lakehouse, table, predicate):
        if table == BRONZE_EVENTS_REJECTED:
            raise KeyboardInterrupt("killed between the commits")
        writes(df, lakehouse, table, predicate)

    monkeypatch.setattr(publish, "replace_where", die_on_rejected)
    with pytest.raises(KeyboardInterrupt):
        ingest_date(spark, settings, DAY)
    monkeypatch.undo()
    # Bronze holds the new run's rows, rejected the old run's: downstream refuses to read it.
    with pytest.raises(IncompleteRunError, match="an ingest that did not finish \\(landing 2026-11-02\\)"):
        clean_dates(spark, settings, DAY)
    healed = ingest_date(spark, settings, DAY)
    assert (healed["bronze"], healed["rejected"], healed["healed"]) == (5, 2, True)
    assert clean_dates(spark, settings, DAY)["silver_rows"] == 5
