"""Feature reads: `latest_features` for 1, 100 and 10,000 keys, and `historical_features` for 1M entity rows.

A user_stats table of --users users over --days daily snapshots and user
sequences of 100 behaviors for up to 50,000 of them, written through the
jobs' own write path (Spark, pipelines.lakehouse.writes: rows sorted by key in
row groups of LOOKUP_ROW_GROUP_BYTES), each date published by its night at
02:00 the day after. Every read asks for every feature of both views of
random existing users at noon of the day after the last date.

- Serving: a FeatureReader kept open in one process (the ledger checked for
  new commits on every read); p50 of --repeats reads per size after one
  warm-up read. Goals: 1 key under 20 ms, 10,000 keys under 300 ms.
- One-shot: `latest_features` for 1 key as a new process's first read does it
  (opens the ledger and tables each call), p50.
- Training: `historical_features` (Spark, point in time) for --entity-rows
  (user, instant) rows spread over the last days, timed with its count.

    python bench/feature_reads.py [--users 200000] [--days 7] [--entity-rows 1000000] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

from features.store import FeatureReader, historical_features, latest_features  # noqa: E402
from pipelines.config import load_settings  # noqa: E402
from pipelines.lakehouse.ledger import Run, record_run  # noqa: E402
from pipelines.lakehouse.session import spark_session  # noqa: E402
from pipelines.lakehouse.tables import GOLD_USER_SEQUENCES, GOLD_USER_STATS, TableSpec  # noqa: E402
from pipelines.lakehouse.writes import replace_date_partitions  # noqa: E402

FIRST = dt.date(2026, 11, 1)
SEQUENCE_USERS = 50_000
SEQUENCE_LENGTH = 100
VIEWS = ["user_stats", "user_sequence"]


def write_history(spark: SparkSession, lakehouse: str, users: int, days: int, rng: np.random.Generator) -> None:
    ids = np.arange(1, users + 1, dtype=np.int64)
    for d in range(days):
        day = FIRST + dt.timedelta(days=d)
        clicks = rng.integers(0, 50, users)
        stats = pa.table({
            "user_id": rng.permutation(ids), "user_impressions": clicks * 7, "user_clicks": clicks, "user_actions": clicks,
            "user_ctr": clicks / np.maximum(clicks * 7, 1), "user_dwell_mean_ms": rng.random(users) * 30_000,
            "as_of_date": pa.array([day] * users, pa.date32()),
        })
        write(spark, lakehouse, GOLD_USER_STATS, stats, day)
    last = FIRST + dt.timedelta(days=days - 1)
    n = min(users, SEQUENCE_USERS)
    offsets = np.arange(0, (n + 1) * SEQUENCE_LENGTH, SEQUENCE_LENGTH, dtype=np.int32)

    def lists(values: pa.Array) -> pa.Array:
        return pa.ListArray.from_arrays(offsets, values)

    sequences = pa.table({
        "user_id": rng.permutation(np.arange(1, n + 1, dtype=np.int64)),
        "item_ids": lists(pa.array(rng.integers(1, 20_000, n * SEQUENCE_LENGTH), pa.int64())),
        "category_ids": lists(pa.array(rng.integers(0, 40, n * SEQUENCE_LENGTH).astype(np.int32))),
        "timestamps": lists(pa.array(np.sort(rng.integers(10**12, 2 * 10**12, n * SEQUENCE_LENGTH)))),
        "dwell_ms": lists(pa.array(rng.integers(0, 60_000, n * SEQUENCE_LENGTH))),
        "actions": lists(pa.array(["click"] * (n * SEQUENCE_LENGTH))),
        "length": pa.array([SEQUENCE_LENGTH] * n, pa.int32()),
        "as_of_date": pa.array([last] * n, pa.date32()),
    })
    write(spark, lakehouse, GOLD_USER_SEQUENCES, sequences, last)


def write(spark: SparkSession, lakehouse: str, table: TableSpec, rows: pa.Table, day: dt.date) -> None:
    """`rows` as the night of `day` publishes them: the jobs' write, then its ledger row at 02:00 the day after."""
    replace_date_partitions(spark.createDataFrame(rows.cast(table.arrow(*rows.column_names))), lakehouse, table, day)
    finished = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(2))
    record_run(lakehouse, Run("bench", [day], finished, tables=(table,)), {}, finished_at=finished)


def p50_ms(read: Callable[[list[int]], pa.Table], n: int, users: int, repeats: int, rng: np.random.Generator) -> float:
    times = []
    for repeat in range(repeats + 1):
        keys = rng.choice(np.arange(1, min(users, SEQUENCE_USERS) + 1), size=n, replace=False).tolist()
        started = time.perf_counter()
        got = read(keys)
        elapsed = time.perf_counter() - started
        if repeat:  # the first is the warm-up
            times.append(elapsed)
        # Every key answered, by its own row.
        assert got.column("user_id").to_pylist() == keys and got.column("user_stats__user_ctr").null_count == 0
        assert got.column("user_sequence__length").null_count == 0
    return round(statistics.median(times) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--entity-rows", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqlake-bench-features-"))
    rng = np.random.default_rng(0)
    spark = spark_session(load_settings(), "seqlake-bench-feature-reads")
    try:
        lakehouse = str(work / "lakehouse")
        write_history(spark, lakehouse, args.users, args.days, rng)
        at = dt.datetime.combine(FIRST + dt.timedelta(days=args.days), dt.time(12), tzinfo=dt.UTC)
        figures: dict[str, object] = {"users": args.users, "days": args.days}
        reader = FeatureReader(lakehouse)
        for n in (1, 100, 10_000):
            figures[f"latency_ms_{n}_keys"] = p50_ms(lambda keys: reader.latest({"user_id": keys}, VIEWS, at), n, args.users, args.repeats, rng)
            print(f"serving read, {n:>6,} keys: {figures[f'latency_ms_{n}_keys']:8.1f} ms (p50 of {args.repeats})", flush=True)
        figures["one_shot_latency_ms_1_key"] = p50_ms(
            lambda keys: latest_features(lakehouse, {"user_id": keys}, VIEWS, at), 1, args.users, args.repeats, rng)
        print(f"one-shot read,      1 key:  {figures['one_shot_latency_ms_1_key']:8.1f} ms (p50 of {args.repeats})", flush=True)

        # Instants over the last three days: some before the last snapshot was published, some after.
        last_us = int(at.timestamp() * 1e6)
        instants = rng.integers(last_us - 3 * 86_400_000_000, last_us, args.entity_rows)
        entities = spark.createDataFrame(pa.table({
            "user_id": rng.integers(1, args.users + 1, args.entity_rows),
            "event_timestamp": pa.array(instants, pa.timestamp("us", tz="UTC")),
        }))
        started = time.perf_counter()
        answered = historical_features(spark, lakehouse, entities, ["user_stats:user_ctr"]).where(
            "user_stats__user_ctr IS NOT NULL").count()
        figures["historical_seconds"] = round(time.perf_counter() - started, 1)
        figures["historical_entity_rows"] = args.entity_rows
        print(f"historical_features, {args.entity_rows:,} entity rows: {figures['historical_seconds']} s "
              f"({answered:,} answered)", flush=True)
        if args.json:
            print(json.dumps(figures))
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
