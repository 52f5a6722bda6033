"""The Feast repo (features/feast_repo) declares seqlake's feature views over the
same Delta tables and answers what seqlake's reader answers: `feast apply` and
`get_historical_features`, run in the Feast virtualenv (.venv-feast, made by
`make setup`: Feast's pins clash with Airflow's), against historical_features
and latest_features on a hand-built lakehouse, down to the microsecond at the
publication instant and at the TTL's end."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest

import features
from features.definitions import VIEWS, resolve
from features.store import historical_features, latest_features
from pipelines.lakehouse.tables import (
    GOLD_ITEM_STATS,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SCORES_CTR,
    table_uri,
)
from tests.published import publish, write_rows

REPO = Path(features.__file__).resolve().parents[1]
_HERE = Path(__file__).resolve().parent
FEAST_REPO = REPO / "features" / "feast_repo"
AGREEMENT = _HERE / "feast_agreement.py"
FEAST_PYTHON = Path(os.environ.get("SEQLAKE_FEAST_PYTHON", REPO / ".venv-feast" / "bin" / "python"))

# One worker runs them all under `pytest -n 2 --dist loadgroup`: one Feast run.
pytestmark = pytest.mark.xdist_group("feast")

D = dt.date
FEATURES = ["user_stats", "item_stats:item_ctr", "item_stats:category_id", "ctr_scores",
            "user_sequence:item_ids", "user_sequence:length", "user_bse"]

# (user_id, item_id, timestamp). Statistics as of A are valid from A + 1 day, 00:00 UTC, and published
# then here, TTL 7 days; scores of day D valid and published at D 00:00, TTL 1 day.
# Seen iff published < t <= valid + TTL.
ROWS = [
    (1, 7, "2026-11-01T12:00:00"),  # nothing published yet
    (1, 7, "2026-11-03T00:00:00"),  # as of Nov 2 and the scores of Nov 3 published exactly now: excluded
    (1, 7, "2026-11-03T00:00:00.000001"),  # ... one microsecond later: seen
    (1, 7, "2026-11-03T00:00:00.000001"),  # the same row twice
    (1, 8, "2026-11-03T06:00:00"),
    (1, 7, "2026-11-04T00:00:00"),  # the scores of Nov 3: the last instant of their TTL
    (1, 7, "2026-11-04T00:00:00.000001"),  # ... and past it
    (1, 7, "2026-11-11T00:00:00"),  # as of Nov 3 (published Nov 4): the last instant of its TTL
    (1, 7, "2026-11-11T00:00:00.000001"),  # ... and past it
    (2, 8, "2026-10-25T08:00:00"),
    (2, 8, "2026-10-29T00:00:00"),  # its only snapshot is older than the TTL
    (3, 9, "2026-11-03T12:00:00"),  # unknown keys
    # Keys that would make one id if joined without a separator ("1" "23", "12" "3"), at one instant.
    (1, 23, "2026-11-03T12:00:00"),
    (12, 3, "2026-11-03T12:00:00"),
]
USER_CTR = [None, 0.1, 0.2, 0.2, 0.2, 0.2, 0.3, 0.3, None, 0.5, None, None, 0.2, None]
SCORE = [None, None, 0.25, 0.25, 0.75, 0.25, None, None, None, None, None, None, 0.125, 0.875]


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def _write(lakehouse: str, table, rows: dict, published: dict, embedding_version: str | None = None) -> None:
    """Write the snapshots, then publish each date at its instant (`published`: date -> ISO instant)."""
    write_rows(lakehouse, table, rows)
    for day, moment in published.items():
        publish(lakehouse, table, [day], moment, embedding_version=embedding_version)


def _dates(*dates) -> pa.Array:
    return pa.array(list(dates), pa.date32())


def _ints(*values, kind: pa.DataType | None = None) -> pa.Array:
    return pa.array(list(values), kind or pa.int64())


@pytest.fixture(scope="session")
def feast_history(tmp_path_factory) -> str:
    lakehouse = str(tmp_path_factory.mktemp("feast") / "lakehouse")

    def at_midnight(*days):
        return {day: f"{day + dt.timedelta(days=1)}T00:00:00" for day in days}

    _write(lakehouse, GOLD_USER_STATS, {  # user 1 daily, user 2 one old snapshot
        "user_id": _ints(1, 1, 1, 2), "user_impressions": _ints(10, 10, 10, 10),
        "user_clicks": _ints(1, 2, 3, 5), "user_actions": _ints(1, 2, 3, 5),
        "user_ctr": [0.1, 0.2, 0.3, 0.5], "user_dwell_mean_ms": [1000.0, 1500.0, 2000.0, 500.0],
        "as_of_date": _dates(D(2026, 11, 1), D(2026, 11, 2), D(2026, 11, 3), D(2026, 10, 20)),
    }, at_midnight(D(2026, 10, 20), D(2026, 11, 1), D(2026, 11, 2), D(2026, 11, 3)))
    _write(lakehouse, GOLD_ITEM_STATS, {
        "item_id": _ints(7, 7, 8), "item_impressions": _ints(100, 200, 50),
        "item_clicks": _ints(11, 24, 45), "item_actions": _ints(11, 24, 45),
        "item_ctr": [0.11, 0.12, 0.9], "item_dwell_mean_ms": [10.0, 20.0, 30.0],
        "category_id": _ints(4, 4, 5, kind=pa.int32()),
        "as_of_date": _dates(D(2026, 11, 1), D(2026, 11, 2), D(2026, 10, 25)),
    }, at_midnight(D(2026, 10, 25), D(2026, 11, 1), D(2026, 11, 2)))
    _write(lakehouse, SCORES_CTR, {
        "user_id": _ints(1, 1, 1, 12), "item_id": _ints(7, 8, 23, 3),
        "candidate_source": ["recent", "co_visitation", "recent", "category_popular"],
        "score": [0.25, 0.75, 0.125, 0.875], "model_version": ["3", "3", "3", "3"],
        "score_date": _dates(*[D(2026, 11, 3)] * 4),
    }, {D(2026, 11, 3): "2026-11-03T00:00:00"})
    _write(lakehouse, GOLD_USER_SEQUENCES, {
        "user_id": _ints(1, 1), "item_ids": pa.array([[4], [4, 6]], pa.list_(pa.int64())),
        "category_ids": pa.array([[1], [1, 2]], pa.list_(pa.int32())),
        "timestamps": pa.array([[10], [10, 20]], pa.list_(pa.int64())),
        "dwell_ms": pa.array([[5], [5, 6]], pa.list_(pa.int64())),
        "actions": pa.array([["click"], ["click", "click"]], pa.list_(pa.string())),
        "length": _ints(1, 2, kind=pa.int32()), "as_of_date": _dates(D(2026, 11, 1), D(2026, 11, 2)),
    }, {})
    # Both dates published by one range run: at the same instant, the newer date wins.
    publish(lakehouse, GOLD_USER_SEQUENCES, [D(2026, 11, 1), D(2026, 11, 2)], "2026-11-03T00:00:00")
    # Three buckets of user 1 as of Nov 2, written out of order.
    _write(lakehouse, GOLD_USER_BSE, {
        "user_id": _ints(1, 1, 1), "as_of_date": _dates(*[D(2026, 11, 2)] * 3),
        "hash_index": _ints(1, 0, 0, kind=pa.int32()), "code": _ints(5, 2, 1, kind=pa.int32()),
        "count": _ints(3, 1, 2),
        "vector_sum": pa.array([[0.5, 0.5], [1.0, 0.0], [0.25, 2.0]], pa.list_(pa.float32())),
        "version": ["v1", "v1", "v1"], "projection_sha256": ["x", "x", "x"],
    }, at_midnight(D(2026, 11, 2)), embedding_version="v1")
    return lakehouse


def _same(ours, theirs) -> bool:
    if isinstance(ours, list) and isinstance(theirs, list):
        return len(ours) == len(theirs) and all(_same(a, b) for a, b in zip(ours, theirs, strict=True))
    if isinstance(ours, float) and isinstance(theirs, float):
        return math.isclose(ours, theirs, rel_tol=1e-12)
    return ours == theirs


class _Feast:
    """The agreement script's run in the Feast virtualenv, started at once and
    awaited when first needed (it takes about 15 s, mostly importing Feast)."""

    def __init__(self, lakehouse: str, folder: Path):
        request = folder / "request.json"
        request.write_text(json.dumps({
            "rows": [{"user_id": u, "item_id": i, "event_timestamp": t} for u, i, t in ROWS],
            "features": FEATURES,
        }))
        self._process = subprocess.Popen(
            [str(FEAST_PYTHON), str(AGREEMENT), "--repo", str(FEAST_REPO), "--lakehouse", lakehouse,
             "--request", str(request), "--feast-dir", str(folder / "feast")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self._figures = None

    def figures(self) -> dict:
        if self._figures is None:
            stdout, stderr = self._process.communicate(timeout=300)
            assert self._process.returncode == 0, stderr[-3000:]
            self._figures = json.loads(stdout.strip().splitlines()[-1])
        return self._figures

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()


# Session-scoped, as Spark's session is: requested before `spark`, Feast starts before Spark does.
@pytest.fixture(scope="session")
def feast(feast_history, tmp_path_factory):
    if not FEAST_PYTHON.exists():
        pytest.skip(f"no Feast virtualenv at {FEAST_PYTHON}: `make setup` makes it")
    run = _Feast(feast_history, tmp_path_factory.mktemp("feast_run"))
    yield run
    run.close()


def _assert_agree(ours: list[dict], theirs: list[dict], columns: list[str]) -> None:
    assert len(theirs) == len(ours) == len(ROWS)
    for (user, item, moment), mine, feasts in zip(ROWS, ours, theirs, strict=True):
        assert (feasts["user_id"], feasts["item_id"]) == (user, item)
        assert dt.datetime.fromisoformat(feasts["event_timestamp"]) == _at(moment)
        differ = {c: (mine[c], feasts[c]) for c in columns if not _same(mine[c], feasts[c])}
        assert not differ, f"user {user}, item {item} at {moment}: (seqlake, Feast) {differ}"


# First, so that Spark's read overlaps Feast's run.
def test_historical_reads_agree_with_feast_to_the_microsecond(feast_history, feast, spark):
    history = feast_history
    references = ["user_stats", "ctr_scores"]  # both publication delays; Spark time grows with each view
    entities = spark.createDataFrame([(u, i, _at(t)) for u, i, t in ROWS],
                                     "user_id long, item_id long, event_timestamp timestamp")
    found = {(r["user_id"], r["item_id"], r["event_timestamp"].astimezone(dt.UTC)): r.asDict(recursive=True)
             for r in historical_features(spark, history, entities, references).collect()}
    ours = [found[(u, i, _at(t))] for u, i, t in ROWS]  # one row per entity row, in their order
    # The cases reach what they mean to: values and nulls on both sides of each edge.
    assert [r["user_stats__user_ctr"] for r in ours] == USER_CTR
    assert [r["ctr_scores__score"] for r in ours] == SCORE
    columns = [c for c in ours[0] if c.startswith(("user_stats__", "ctr_scores__"))]
    assert len(columns) == len(VIEWS["user_stats"].features) + len(VIEWS["ctr_scores"].features)
    _assert_agree(ours, feast.figures()["rows"], columns)


def test_latest_reads_of_every_view_agree_with_feast(feast_history, feast):
    history = feast_history
    ours = [
        latest_features(history, {"user_id": [u], "item_id": [i]}, FEATURES, _at(t)).to_pylist()[0]
        for u, i, t in ROWS
    ]
    assert [r["user_stats__user_ctr"] for r in ours] == USER_CTR
    assert [r["ctr_scores__score"] for r in ours] == SCORE
    assert ours[2]["user_bse__code"] == [1, 2, 5]
    assert ours[2]["user_bse__vector_sum"] == [[0.25, 2.0], [1.0, 0.0], [0.5, 0.5]]
    assert ours[2]["user_sequence__item_ids"] == [4, 6]
    columns = [c for c in ours[0] if "__" in c]
    assert len(columns) == sum(len(names) for names in resolve(FEATURES).values())
    theirs = feast.figures()["rows"]
    assert sorted(columns) == sorted(c for c in theirs[0] if "__" in c)
    _assert_agree(ours, theirs, columns)


def test_feast_registry_holds_seqlakes_views_over_the_same_tables(feast_history, feast):
    history = feast_history
    registry = feast.figures()["registry"]
    assert sorted(registry) == sorted(VIEWS)
    for name, view in VIEWS.items():
        applied = registry[name]
        assert applied["entities"] == [e.name for e in view.entities], name
        assert applied["join_keys"] == list(view.join_keys), name
        assert applied["features"] == list(view.features), name
        assert applied["ttl_s"] == view.ttl.total_seconds(), name
        assert applied["valid_after_s"] == view.valid_after.total_seconds(), name
        assert applied["path"] == table_uri(history, view.source), name
        assert applied["file_format"] == "DeltaFormat", name
        assert (applied["owner"], applied["description"]) == (view.owner, view.description), name
