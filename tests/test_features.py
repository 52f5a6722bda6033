"""Feature-store reads on a hand-built history: the point-in-time rule with
exact values (a snapshot published exactly at the timestamp is excluded, one
past its TTL is null), latest reads equal to historical reads at the same
instant, many-row views as ordered lists, and clear errors."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from features.definitions import VIEWS, resolve
from features.store import historical_features, latest_features
from pipelines.lakehouse.tables import (
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SCORES_CTR,
    table_uri,
)

D = dt.date


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _write(lakehouse: str, table, rows: dict, partition: str) -> None:
    write_deltalake(table_uri(lakehouse, table), pa.table(rows), partition_by=[partition], mode="append")


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> str:
    lakehouse = str(tmp_path_factory.mktemp("features") / "lakehouse")
    stats = [  # (user, as_of_date, ctr): user 1 daily, user 2 one old snapshot
        (1, D(2026, 11, 1), 0.1), (1, D(2026, 11, 2), 0.2), (1, D(2026, 11, 3), 0.3), (2, D(2026, 10, 20), 0.5),
    ]
    _write(lakehouse, GOLD_USER_STATS, {
        "user_id": pa.array([s[0] for s in stats], pa.int64()),
        "user_impressions": pa.array([10] * 4, pa.int64()), "user_clicks": pa.array([1, 2, 3, 5], pa.int64()),
        "user_actions": pa.array([1, 2, 3, 5], pa.int64()), "user_ctr": [s[2] for s in stats],
        "user_dwell_mean_ms": [1000.0] * 4, "as_of_date": pa.array([s[1] for s in stats], pa.date32()),
    }, "as_of_date")
    # Two buckets of user 1 as of Nov 2, written out of order.
    _write(lakehouse, GOLD_USER_BSE, {
        "user_id": pa.array([1, 1], pa.int64()), "as_of_date": pa.array([D(2026, 11, 2)] * 2, pa.date32()),
        "hash_index": pa.array([1, 0], pa.int32()), "code": pa.array([5, 2], pa.int32()),
        "count": pa.array([3, 1], pa.int64()), "vector_sum": pa.array([[0.5, 0.5], [1.0, 0.0]], pa.list_(pa.float32())),
        "version": ["v1", "v1"], "projection_sha256": ["x", "x"],
    }, "as_of_date")
    _write(lakehouse, GOLD_USER_SEQUENCES, {
        "user_id": pa.array([1, 1], pa.int64()), "item_ids": pa.array([[4], [4, 6]], pa.list_(pa.int64())),
        "category_ids": pa.array([[1], [1, 2]], pa.list_(pa.int32())), "timestamps": pa.array([[10], [10, 20]], pa.list_(pa.int64())),
        "length": pa.array([1, 2], pa.int32()), "as_of_date": pa.array([D(2026, 11, 1), D(2026, 11, 2)], pa.date32()),
    }, "as_of_date")
    # Scores of day Nov 3 are published at its start (no day's delay).
    _write(lakehouse, SCORES_CTR, {
        "user_id": pa.array([1, 1], pa.int64()), "item_id": pa.array([7, 8], pa.int64()),
        "candidate_source": ["impression", "popular"], "score": [0.25, 0.75], "model_version": ["3", "3"],
        "score_date": pa.array([D(2026, 11, 3)] * 2, pa.date32()),
    }, "score_date")
    return lakehouse


# (user_id, timestamp, user_ctr expected): snapshots as of A are published at A + 1 day, 00:00 UTC; TTL 7 days.
CASES = [
    (1, "2026-11-01T12:00:00", None),  # nothing published yet
    (1, "2026-11-03T00:00:00", 0.1),  # as of Nov 2 is published exactly now: excluded
    (1, "2026-11-03T00:00:01", 0.2),
    (1, "2026-11-10T12:00:00", 0.3),  # as of Nov 3, published Nov 4, within 7 days
    (1, "2026-11-11T00:00:01", None),  # ... and now past its TTL
    (2, "2026-10-25T08:00:00", 0.5),
    (2, "2026-10-29T00:00:00", None),  # its only snapshot is older than the TTL
    (3, "2026-11-03T12:00:00", None),  # an unknown user
]


def test_historical_reads_take_the_newest_snapshot_published_strictly_before_within_the_ttl(spark, history):
    entities = spark.createDataFrame(
        [(u, at(t)) for u, t, _ in CASES], "user_id long, event_timestamp timestamp"
    )
    rows = historical_features(spark, history, entities, ["user_stats:user_ctr", "user_stats:user_clicks"]).collect()
    assert [(r["user_id"], r["user_stats__user_ctr"]) for r in rows] == [(u, ctr) for u, _, ctr in CASES]
    assert [r["user_stats__user_clicks"] for r in rows] == [None, 1, 2, 3, None, 5, None, None]


def test_latest_reads_equal_the_historical_read_at_the_same_instant(spark, history):
    for user, moment, expected in CASES:
        row = latest_features(history, {"user_id": [user]}, ["user_stats:user_ctr"], at(moment)).to_pylist()
        assert row == [{"user_id": user, "user_stats__user_ctr": expected}], moment


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
    listed = subprocess.run([str(Path(sys.executable).parent / "seqlake"), "features", "list", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert [v["view"] for v in json.loads(listed.stdout.strip().splitlines()[-1])["views"]] == list(VIEWS)
