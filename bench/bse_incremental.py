"""The signatures stage's night against the length of the histories it updates.

Two lakehouses with the same users and the same new behaviors a night: in
one every user has --short behaviors before the night (100 by default), in
the other --long (10,000; past examples.train_len, the long side that BSE
hashes, and up to sequences.max_len). Each runs the real stages for the base
day (sequences, signatures), then the night's sequences, then the night's
signatures twice: updated from the base day's bucket sums (what a night
does) and rebuilt in full (`--full-rebuild`, what a new embedding version
costs), each after a first run that embedded the night's new items. It prints each time, the ratio of the long histories' time to the
short ones' (goal: flat, 1.0 within noise, for the update) and the largest
difference between the updated and the rebuilt bucket sums (goal <= 1e-5,
counts equal).

    python bench/bse_incremental.py [--users 400] [--short 100] [--long 10000] [--new 20] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from pipelines.config import load_settings  # noqa: E402
from pipelines.lakehouse.session import spark_session  # noqa: E402
from pipelines.lakehouse.tables import GOLD_USER_BSE, SILVER_EVENTS  # noqa: E402
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions  # noqa: E402
from pipelines.stages.sequences import build_sequences  # noqa: E402
from pipelines.stages.signatures import build_signatures  # noqa: E402

BASE_DAY = dt.date(2026, 11, 1)
NIGHT = BASE_DAY + dt.timedelta(days=1)
ITEMS = 50_000


def genuine_clicks(spark, users: int, per_user: int, day: dt.date, seed: int):
    """silver/events rows of `day`: `per_user` genuine clicks of each user, spread over the day."""
    start_ms = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
    return spark.range(users * per_user).select(
        F.concat(F.lit(f"e{seed}-"), F.col("id").cast("string")).alias("event_id"),
        F.lit("click").alias("event_type"),
        (F.col("id") % users).alias("user_id"),
        (F.abs(F.xxhash64("id", F.lit(seed))) % ITEMS + 1).alias("item_id"),
        # One category per item, as the catalogue has it.
        (F.abs(F.xxhash64(F.abs(F.xxhash64("id", F.lit(seed))) % ITEMS + 1)) % 40).cast("int").alias("category_id"),
        (F.lit(start_ms) + F.col("id") % 86_000_000).alias("ts"),
        F.lit(20_000).cast("long").alias("dwell_ms"),
        F.lit(None).cast("string").alias("noise_reason"),
        F.lit(day).alias("event_date"),
    )


def timed(action) -> tuple[dict, float]:
    started = time.perf_counter()
    figures = action()
    return figures, time.perf_counter() - started


def night_bucket_sums(spark, lakehouse: str) -> dict[tuple, tuple[int, np.ndarray]]:
    rows = read_date_partitions(spark, lakehouse, GOLD_USER_BSE, NIGHT).collect()
    return {(r["user_id"], r["version"], r["hash_index"], r["code"]): (r["count"], np.array(r["vector_sum"])) for r in rows}


def one_history_length(spark, users: int, history: int, new: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="seqlake-bench-bse-"))
    try:
        # No look-back: the night rewrites its own date only, from the base day's sums.
        settings = load_settings(overrides=[f"lakehouse={work / 'lakehouse'}", "clean.lookback_days=0", "ingest.max_lateness_days=0"])
        lakehouse = settings.lakehouse
        replace_date_partitions(genuine_clicks(spark, users, history, BASE_DAY, seed=1), lakehouse, SILVER_EVENTS, BASE_DAY)
        build_sequences(spark, settings, BASE_DAY)
        build_signatures(spark, settings, BASE_DAY)
        replace_date_partitions(genuine_clicks(spark, users, new, NIGHT, seed=2), lakehouse, SILVER_EVENTS, NIGHT)
        build_sequences(spark, settings, NIGHT)
        # The night's first run also embeds the night's new items (bootstrap version), which
        # both modes would do alike: the timed runs below rewrite the night with nothing new.
        build_signatures(spark, settings, NIGHT)
        updated, updated_s = timed(lambda: build_signatures(spark, settings, NIGHT))
        assert updated["mode"] == "incremental", updated
        updated_sums = night_bucket_sums(spark, lakehouse)
        rebuilt, rebuilt_s = timed(lambda: build_signatures(spark, settings, NIGHT, full_rebuild=True))
        assert rebuilt["mode"] == "full", rebuilt
        rebuilt_sums = night_bucket_sums(spark, lakehouse)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if updated_sums.keys() != rebuilt_sums.keys():
        raise AssertionError(f"{len(updated_sums.keys() ^ rebuilt_sums.keys())} buckets differ between update and rebuild")
    counts_equal = all(updated_sums[k][0] == rebuilt_sums[k][0] for k in rebuilt_sums)
    difference = max(float(np.abs(updated_sums[k][1] - rebuilt_sums[k][1]).max()) for k in rebuilt_sums)
    hashed = min(history + new, settings.sequences.max_len, settings.examples.train_len)
    print(f"{users:,} users x {history:,} behaviors + {new} new (long side {hashed}): update {updated_s:.1f} s, "
          f"full rebuild {rebuilt_s:.1f} s; buckets {len(rebuilt_sums):,}, counts equal: {counts_equal}, "
          f"largest sum difference {difference:.2e}", flush=True)
    return {"update_seconds": round(updated_s, 2), "rebuild_seconds": round(rebuilt_s, 2), "counts_equal": counts_equal,
            "max_abs_difference": difference, "long_side": hashed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--short", type=int, default=100, help="behaviors per user before the night, short histories")
    parser.add_argument("--long", type=int, default=10_000, help="behaviors per user before the night, long histories")
    parser.add_argument("--new", type=int, default=20, help="new behaviors per user in the night")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    spark = spark_session(load_settings(), "seqlake-bench-bse-incremental")
    # A first pass warms the session up (JVM, Python workers); its figures are not reported.
    one_history_length(spark, min(args.users, 50), args.short, args.new)
    short = one_history_length(spark, args.users, args.short, args.new)
    long = one_history_length(spark, args.users, args.long, args.new)
    spark.stop()
    figures = {
        **{f"short_{k}": v for k, v in short.items()},
        **{f"long_{k}": v for k, v in long.items()},
        "update_long_over_short": round(long["update_seconds"] / short["update_seconds"], 3),
        "rebuild_long_over_short": round(long["rebuild_seconds"] / short["rebuild_seconds"], 3),
        "max_abs_difference": max(short["max_abs_difference"], long["max_abs_difference"]),
        "counts_equal": short["counts_equal"] and long["counts_equal"],
    }
    print(f"long/short histories ({args.long:,} vs {args.short:,} behaviors, {args.new} new a night): update "
          f"x{figures['update_long_over_short']} (goal: flat), full rebuild x{figures['rebuild_long_over_short']}; "
          f"largest difference to the rebuild {figures['max_abs_difference']:.2e} (goal <= 1e-5)")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
