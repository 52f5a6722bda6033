"""Feature-store reads on a hand-built history: the point-in-time rule with
exact values (a snapshot visible from the instant its night published it,
as it was then: a later restatement never reaches an earlier read; one
published exactly at the timestamp excluded, one past its TTL null), latest
reads equal to historical reads at the same instant, many-row views as
ordered lists, and clear errors."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from features.definitions import VIEWS, resolve
from features.store import FeatureReader, historical_features, latest_features
from pipelines.lakehouse.tables import (
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SCORES_CTR,
)
from tests.published import publish, write_rows

D = dt.date


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _stats(rows: list[tuple[int, dt.date, float, int]]) -> dict:
    return {
        "user_id": pa.array([r[0] for r in rows], pa.int64()),
        "user_impressions": pa.array([10] * len(rows), pa.int64()), "user_clicks": pa.array([r[3] for r in rows], pa.int64()),
        "user_actions": pa.array([r[3] for r in rows], pa.int64()), "user_ctr": [r[2] for r in rows],
        "user_dwell_mean_ms": [1000.0] * len(rows), "as_of_date": pa.array([r[1] for r in rows], pa.date32()),
    }


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> str:
    """User statistics as of Nov 1, 2 and 3, each published by its night at
    02:00 the day after; the night of Nov 3 also restates Nov 2 (a late event:
    ctr 0.9). User 2 has one old snapshot."""
    lakehouse = str(tmp_path_factory.mktemp("features") / "lakehouse")
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(2, D(2026, 10, 20), 0.5, 5)]))
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 10, 20)], "2026-10-21T02:00:00")
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 1), 0.1, 1)]))
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 1)], "2026-11-02T02:00:00")
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 2), 0.2, 2)]))
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 2)], "2026-11-03T02:00:00")
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 2), 0.9, 9)]), replacing=D(2026, 11, 2))
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 3), 0.3, 3)]))
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 3)], "2026-11-04T02:00:00", restated=[D(2026, 11, 2)])
    # Two buckets of user 1 as of Nov 2, written out of order.
    write_rows(lakehouse, GOLD_USER_BSE, {
        "user_id": pa.array([1, 1], pa.int64()), "as_of_date": pa.array([D(2026, 11, 2)] * 2, pa.date32()),
        "hash_index": pa.array([1, 0], pa.int32()), "code": pa.array([5, 2], pa.int32()),
        "count": pa.array([3, 1], pa.int64()), "vector_sum": pa.array([[0.5, 0.5], [1.0, 0.0]], pa.list_(pa.float32())),
        "version": ["v1", "v1"], "projection_sha256": ["x", "x"],
    })
    publish(lakehouse, GOLD_USER_BSE, [D(2026, 11, 2)], "2026-11-03T02:00:00", embedding_version="v1")
    write_rows(lakehouse, GOLD_USER_SEQUENCES, {
        "user_id": pa.array([1, 1], pa.int64()), "item_ids": pa.array([[4], [4, 6]], pa.list_(pa.int64())),
        "category_ids": pa.array([[1], [1, 2]], pa.list_(pa.int32())), "timestamps": pa.array([[10], [10, 20]], pa.list_(pa.int64())),
        "length": pa.array([1, 2], pa.int32()), "as_of_date": pa.array([D(2026, 11, 1), D(2026, 11, 2)], pa.date32()),
    })
    publish(lakehouse, GOLD_USER_SEQUENCES, [D(2026, 11, 1), D(2026, 11, 2)], "2026-11-03T02:00:00")
    # The scores of day Nov 3 stand for all of Nov 3 (no day's delay); the night of Nov 2 publishes them at 03:00.
    write_rows(lakehouse, SCORES_CTR, {
        "user_id": pa.array([1, 1], pa.int64()), "item_id": pa.array([7, 8], pa.int64()),
        "candidate_source": ["recent", "co_visitation"], "score": [0.25, 0.75], "model_version": ["3", "3"],
        "score_date": pa.array([D(2026, 11, 3)] * 2, pa.date32()),
    })
    publish(lakehouse, SCORES_CTR, [D(2026, 11, 3)], "2026-11-03T03:00:00")
    return lakehouse


# (user_id, timestamp, user_ctr expected): a snapshot as of A is seen from the instant its night
# published it (02:00 of A + 1 here) until 7 days after A + 1, 00:00 UTC.
CASES = [
    (1, "2026-11-01T12:00:00", None),  # nothing published yet
    (1, "2026-11-03T01:00:00", 0.1),  # Nov 2 is over, but its night has not published it yet
    (1, "2026-11-03T02:00:00", 0.1),  # ... it publishes exactly now: excluded
    (1, "2026-11-03T02:00:00.000001", 0.2),
    (1, "2026-11-04T01:59:59", 0.2),  # as published on Nov 3, not as the night of Nov 3 restated it (0.9)
    (1, "2026-11-10T12:00:00", 0.3),  # as of Nov 3, published Nov 4, within 7 days
    (1, "2026-11-11T00:00:00", 0.3),  # ... the last instant of its TTL
    (1, "2026-11-11T00:00:00.000001", None),  # ... and past it
    (2, "2026-10-25T08:00:00", 0.5),
    (2, "2026-10-28T00:00:01", None),  # its only snapshot is older than the TTL
    (3, "2026-11-03T12:00:00", None),  # an unknown user
]


def test_historical_reads_take_the_snapshot_published_last_before_within_the_ttl(spark, history):
    entities = spark.createDataFrame(
        [(u, at(t)) for u, t, _ in CASES], "user_id long, event_timestamp timestamp"
    )
    got = historical_features(spark, history, entities, ["user_stats:user_ctr", "user_stats:user_clicks"]).collect()
    rows = sorted(got, key=lambda r: (r["user_id"], r["event_timestamp"]))  # one row per entity row, in no set order
    assert [(r["user_id"], r["user_stats__user_ctr"]) for r in rows] == [(u, ctr) for u, _, ctr in CASES]
    assert [r["user_stats__user_clicks"] for r in rows] == [None, 1, 1, 2, 2, 3, 3, None, 5, None, None]


def test_historical_reads_match_rows_back_by_key_even_when_spark_evaluates_the_entities_twice(spark, history):
    """Entity rows whose order changes each time Spark computes them (here
    shuffled at random in each partition; in real jobs, rows out of a shuffle
    recomputed): every row gets its own user's features."""

    def shuffled(batches):
        for batch in batches:
            yield batch.sample(frac=1.0, random_state=random.randrange(1 << 30))

    later = at("2026-10-25T08:00:00")
    rows = [(user, at("2026-11-10T12:00:00") if user == 1 else later) for user in range(1, 41)]
    entities = spark.createDataFrame(rows, "user_id long, event_timestamp timestamp").mapInPandas(
        shuffled, "user_id long, event_timestamp timestamp")
    got = {r["user_id"]: r["user_stats__user_ctr"] for r in historical_features(spark, history, entities, ["user_stats:user_ctr"]).collect()}
    assert got == {user: {1: 0.3, 2: 0.5}.get(user) for user in range(1, 41)}


def test_latest_reads_equal_the_historical_read_at_the_same_instant(spark, history, monkeypatch):
    for user, moment, expected in CASES:
        row = latest_features(history, {"user_id": [user]}, ["user_stats:user_ctr"], at(moment)).to_pylist()
        assert row == [{"user_id": user, "user_stats__user_ctr": expected}], moment
    # An instant without a time zone is UTC, whatever the machine's local time.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        for user, moment, expected in CASES:
            naive = dt.datetime.fromisoformat(moment)
            assert latest_features(history, {"user_id": [user]}, ["user_stats:user_ctr"], naive).column(1).to_pylist() == [expected]
    finally:
        monkeypatch.undo()
        time.tzset()


def test_many_row_views_read_as_lists_in_bucket_order_and_pairs_read_scores(history):
    got = latest_features(history, {"user_id": [1, 1, 9], "item_id": [8, 7, 7]},
                          ["user_bse:hash_index", "user_bse:code", "ctr_scores:score", "user_sequence:item_ids"],
                          at("2026-11-03T06:00:00"))
    assert got.to_pylist() == [
        {"user_id": 1, "item_id": 8, "user_bse__hash_index": [0, 1], "user_bse__code": [2, 5], "ctr_scores__score": 0.75,
         "user_sequence__item_ids": [4, 6]},
        {"user_id": 1, "item_id": 7, "user_bse__hash_index": [0, 1], "user_bse__code": [2, 5], "ctr_scores__score": 0.25,
         "user_sequence__item_ids": [4, 6]},
        {"user_id": 9, "item_id": 7, "user_bse__hash_index": None, "user_bse__code": None, "ctr_scores__score": None,
         "user_sequence__item_ids": None},
    ]


def test_unknown_views_features_and_missing_keys_are_clear_errors(history):
    with pytest.raises(ValueError, match="unknown feature view 'user_mood'"):
        resolve(["user_mood:x"])
    with pytest.raises(ValueError, match="unknown feature 'ctr' of view 'user_stats'"):
        resolve(["user_stats:ctr"])
    with pytest.raises(ValueError, match="view 'ctr_scores' needs user_id and item_id"):
        latest_features(history, {"user_id": [1]}, ["ctr_scores:score"])
    assert resolve(["user_stats"]) == {VIEWS["user_stats"]: list(VIEWS["user_stats"].features)}


def test_features_get_ends_with_one_json_object(history):
    done = subprocess.run(
        [str(Path(sys.executable).parent / "seqlake"), "features", "get", "--user", "1", "--as-of", "2026-11-03T06:00:00",
         "--features", "user_stats:user_ctr", "user_bse:code", "--lakehouse", history, "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["features"] == {"user_id": 1, "user_stats__user_ctr": 0.2, "user_bse__code": [2, 5]}
    # Now, long after: every snapshot is past its TTL, and the answer says so instead of a row of nulls.
    for flags in (["--json"], []):
        now = subprocess.run([str(Path(sys.executable).parent / "seqlake"), "features", "get", "--user", "1",
                              "--features", "user_stats:user_ctr", "--lakehouse", history, *flags],
                             capture_output=True, text=True, timeout=120)
        assert now.returncode == 0, now.stderr[-2000:]
        why = ("user_stats: every snapshot is past its TTL: the newest, as of 2026-11-03 (published 2026-11-04T02:00:00+00:00), "
               "expired at 2026-11-11T00:00:00+00:00 (TTL 168 h)")
        if flags:
            figures = json.loads(now.stdout.strip().splitlines()[-1])
            assert figures["features"] == {"user_id": 1, "user_stats__user_ctr": None}
            assert "user_stats: " + figures["unanswered"]["user_stats"]["why"] == why
            assert figures["unanswered"]["user_stats"]["date"] == "2026-11-03"
        else:
            assert why in now.stdout
    listed = subprocess.run([str(Path(sys.executable).parent / "seqlake"), "features", "list", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert [v["view"] for v in json.loads(listed.stdout.strip().splitlines()[-1])["views"]] == list(VIEWS)


def test_a_reader_kept_open_sees_what_a_night_publishes_after_it_opened_and_older_snapshots_for_keys_the_newest_lacks(tmp_path):
    lakehouse = str(tmp_path / "lakehouse")
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 1), 0.1, 1), (2, D(2026, 11, 1), 0.5, 5)]))
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 1)], "2026-11-02T02:00:00")
    reader = FeatureReader(lakehouse)
    noon = at("2026-11-03T12:00:00")
    assert reader.latest({"user_id": [1, 2, 3]}, ["user_stats:user_ctr"], noon).column(1).to_pylist() == [0.1, 0.5, None]
    # The night of Nov 2 publishes user 1 only; the reader, opened before, sees it on its next read.
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 2), 0.2, 2)]))
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 2)], "2026-11-03T02:00:00")
    assert reader.latest({"user_id": [1, 2, 3]}, ["user_stats:user_ctr"], noon).column(1).to_pylist() == [0.2, 0.5, None]
    # A restatement of Nov 2 after its publication stays out of reads at instants before it, as with latest_features.
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 2), 0.9, 9)]), replacing=D(2026, 11, 2))
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 3)], "2026-11-04T02:00:00", restated=[D(2026, 11, 2)])
    assert reader.latest({"user_id": [1]}, ["user_stats:user_ctr"], noon).column(1).to_pylist() == [0.2]



def test_threads_sharing_a_reader_read_the_old_or_the_new_publication_while_a_night_publishes(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    lakehouse = str(tmp_path / "lakehouse")
    write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 1), 0.1, 1)]))
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 1)], "2026-11-02T02:00:00")
    reader = FeatureReader(lakehouse)

    def reads(_: int) -> set[float]:
        return {reader.latest({"user_id": [1]}, ["user_stats:user_ctr"], at("2026-11-03T12:00:00")).column(1)[0].as_py()
                for _ in range(30)}

    with ThreadPoolExecutor(4) as pool:
        running = [pool.submit(reads, n) for n in range(4)]
        write_rows(lakehouse, GOLD_USER_STATS, _stats([(1, D(2026, 11, 2), 0.2, 2)]))
        publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 2)], "2026-11-03T02:00:00")
        seen = set().union(*(r.result() for r in running))
    assert seen <= {0.1, 0.2}
    assert reader.latest({"user_id": [1]}, ["user_stats:user_ctr"], at("2026-11-03T12:00:00")).column(1).to_pylist() == [0.2]

def test_tables_read_by_key_are_written_sorted_by_key_in_row_groups_a_key_read_can_skip(spark, tmp_path):
    import dataclasses

    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    from pipelines.lakehouse.files import delta_dataset
    from pipelines.lakehouse.writes import replace_date_partitions

    lakehouse, table = str(tmp_path / "lakehouse"), dataclasses.replace(GOLD_USER_STATS, lookup_row_group_bytes=64 << 10)
    users = list(range(1, 20_001))
    random.Random(7).shuffle(users)
    rows = pa.table(_stats([(u, D(2026, 11, 1), 0.1, u % 50) for u in users])).cast(GOLD_USER_STATS.schema)
    replace_date_partitions(spark.createDataFrame(rows), lakehouse, table, D(2026, 11, 1))
    assert spark.conf.get("parquet.block.size", None) is None  # the session's own setting again

    log = DeltaTable(str(tmp_path / "lakehouse" / "gold" / "user_stats"))
    groups = []  # (first key, last key, rows) of every row group of every file
    for uri in log.file_uris():
        column = pq.read_table(uri, columns=["user_id"]).column("user_id").to_pylist()
        assert column == sorted(column)
        meta = pq.ParquetFile(uri).metadata
        groups += [(meta.row_group(i).column(0).statistics.min, meta.row_group(i).column(0).statistics.max,
                    meta.row_group(i).num_rows) for i in range(meta.num_row_groups)]
    groups.sort()
    assert len(groups) > 4 and sum(rows for *_, rows in groups) == 20_000
    assert all(high < low for (_, high, _), (low, _, _) in zip(groups, groups[1:], strict=False))  # disjoint key ranges
    # A one-key read opens one file (the Delta log's statistics rule the others out) and decodes one row group of it.
    key = ds.field("user_id") == 4_242
    (file,) = delta_dataset(log).get_fragments(filter=key)
    assert len(file.split_by_row_group(key)) == 1
