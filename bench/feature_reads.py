"""Latency of `latest_features` (delta-rs + pyarrow, no Spark) for 1, 100 and 10,000 keys.

A user_stats table of --users users over --days daily snapshots (one Delta
partition each, as the sequences job writes it, each published by its night
at 02:00 the day after) and user sequences of 100 behaviors for the same
users; each read asks for every feature of both views of random existing
users at noon of the day after the last. Median of --repeats
reads per size, after one warm-up read.

    python bench/feature_reads.py [--users 200000] [--days 7] [--json]
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from deltalake import write_deltalake  # noqa: E402

from features.store import latest_features  # noqa: E402
from pipelines.lakehouse.ledger import Run, record_run  # noqa: E402
from pipelines.lakehouse.tables import GOLD_USER_SEQUENCES, GOLD_USER_STATS, table_uri  # noqa: E402

FIRST = dt.date(2026, 11, 1)


def write_history(lakehouse: str, users: int, days: int, rng: np.random.Generator) -> None:
    ids = np.arange(1, users + 1, dtype=np.int64)
    for d in range(days):
        as_of = pa.array([FIRST + dt.timedelta(days=d)] * users, pa.date32())
        clicks = rng.integers(0, 50, users)
        write_deltalake(table_uri(lakehouse, GOLD_USER_STATS), pa.table({
            "user_id": ids, "user_impressions": clicks * 7, "user_clicks": clicks, "user_actions": clicks,
            "user_ctr": clicks / np.maximum(clicks * 7, 1), "user_dwell_mean_ms": rng.random(users) * 30_000, "as_of_date": as_of,
        }), partition_by=["as_of_date"], mode="append")
        publish(lakehouse, GOLD_USER_STATS, FIRST + dt.timedelta(days=d))
    sequence_users = min(users, 50_000)
    length = 100
    items = pa.ListArray.from_arrays(np.arange(0, (sequence_users + 1) * length, length, dtype=np.int32),
                                     pa.array(rng.integers(1, 20_000, sequence_users * length), pa.int64()))
    categories = pa.ListArray.from_arrays(np.arange(0, (sequence_users + 1) * length, length, dtype=np.int32),
                                          pa.array(rng.integers(0, 40, sequence_users * length).astype(np.int32)))
    stamps = pa.ListArray.from_arrays(np.arange(0, (sequence_users + 1) * length, length, dtype=np.int32),
                                      pa.array(np.sort(rng.integers(10**12, 2 * 10**12, sequence_users * length))))
    write_deltalake(table_uri(lakehouse, GOLD_USER_SEQUENCES), pa.table({
        "user_id": np.arange(1, sequence_users + 1, dtype=np.int64), "item_ids": items, "category_ids": categories,
        "timestamps": stamps, "length": pa.array([length] * sequence_users, pa.int32()),
        "as_of_date": pa.array([FIRST + dt.timedelta(days=days - 1)] * sequence_users, pa.date32()),
    }), partition_by=["as_of_date"], mode="append")
    publish(lakehouse, GOLD_USER_SEQUENCES, FIRST + dt.timedelta(days=days - 1))


def publish(lakehouse: str, table, day: dt.date) -> None:
    """The ledger row of the night of `day` that published it, at 02:00 the day after."""
    finished = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(2))
    record_run(lakehouse, Run("bench", [day], finished, tables=(table,)), {}, finished_at=finished)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqlake-bench-features-"))
    rng = np.random.default_rng(0)
    try:
        lakehouse = str(work / "lakehouse")
        write_history(lakehouse, args.users, args.days, rng)
        at = dt.datetime.combine(FIRST + dt.timedelta(days=args.days), dt.time(12), tzinfo=dt.UTC)
        figures: dict[str, object] = {"users": args.users, "days": args.days}
        for n in (1, 100, 10_000):
            times = []
            for repeat in range(args.repeats + 1):
                keys = rng.choice(np.arange(1, min(args.users, 50_000) + 1), size=n, replace=False).tolist()
                started = time.perf_counter()
                got = latest_features(lakehouse, {"user_id": keys}, ["user_stats", "user_sequence"], at)
                elapsed = time.perf_counter() - started
                if repeat:
                    times.append(elapsed)
                assert got.num_rows == n and got.column("user_stats__user_ctr").null_count == 0
            figures[f"latency_ms_{n}_keys"] = round(statistics.median(times) * 1000, 1)
            print(f"{n:>6,} keys: {statistics.median(times) * 1000:8.1f} ms (median of {args.repeats})", flush=True)
        if args.json:
            print(json.dumps(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
