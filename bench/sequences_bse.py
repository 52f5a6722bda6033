"""Throughput of the sequences and signatures (BSE) stages at two sizes 4x apart.

Writes a synthetic silver table (every user with the same number of genuine
clicks on one day), then times `build_sequences` and `build_signatures`
(bootstrap embeddings, item signatures, user bucket sums) at each size, and
prints users/s and behaviors/s, the growth exponent of time in data size
between the sizes (goal: <= 1.1), and the Python driver's peak memory after
each size (goal: flat, since nothing is collected to the driver).

    python bench/sequences_bse.py [--users 5000] [--length 400] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import functions as F  # noqa: E402

from pipelines.config import load_settings  # noqa: E402
from pipelines.lakehouse.session import spark_session  # noqa: E402
from pipelines.lakehouse.tables import SILVER_EVENTS  # noqa: E402
from pipelines.lakehouse.writes import replace_date_partitions  # noqa: E402
from pipelines.stages.sequences import build_sequences  # noqa: E402
from pipelines.stages.signatures import build_signatures  # noqa: E402

DAY = dt.date(2026, 11, 1)
ITEMS = 50_000


def synthetic_silver(spark, users: int, length: int):
    start_ms = int(dt.datetime.combine(DAY, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
    return spark.range(users * length).select(
        F.concat(F.lit("e"), F.col("id").cast("string")).alias("event_id"),
        F.lit("click").alias("event_type"),
        (F.col("id") % users).alias("user_id"),
        (F.abs(F.xxhash64("id")) % ITEMS + 1).alias("item_id"),
        (F.abs(F.xxhash64("id", F.lit(1))) % 40).cast("int").alias("category_id"),
        (F.lit(start_ms) + F.col("id") % 86_000_000).alias("ts"),
        F.lit(20_000).cast("long").alias("dwell_ms"),
        F.lit(None).cast("string").alias("noise_reason"),
        F.lit(DAY).alias("event_date"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=5_000, help="users at the small size (x4 at the large)")
    parser.add_argument("--length", type=int, default=400, help="behaviors per user")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    spark = spark_session(load_settings(), "seqlake-bench-sequences-bse")
    results = {}
    for scale in (1, 4):
        users = args.users * scale
        work = Path(tempfile.mkdtemp(prefix="seqlake-bench-seq-"))
        try:
            settings = load_settings(overrides=[f"lakehouse={work / 'lakehouse'}", f"sequences.max_len={args.length}"])
            replace_date_partitions(synthetic_silver(spark, users, args.length), settings.lakehouse, SILVER_EVENTS, DAY)
            started = time.perf_counter()
            seq = build_sequences(spark, settings, DAY)
            sequences_s = time.perf_counter() - started
            started = time.perf_counter()
            bse = build_signatures(spark, settings, DAY, settings.bse.bootstrap_version)
            signatures_s = time.perf_counter() - started
        finally:
            shutil.rmtree(work, ignore_errors=True)
        behaviors = users * args.length
        assert seq["behaviors"] == behaviors and bse["users"] == users
        results[scale] = r = {
            "users": users,
            "behaviors": behaviors,
            "sequences_seconds": round(sequences_s, 2),
            "sequences_users_per_s": round(users / sequences_s),
            "sequences_behaviors_per_s": round(behaviors / sequences_s),
            "signatures_seconds": round(signatures_s, 2),
            "signatures_users_per_s": round(users / signatures_s),
            "signatures_behaviors_per_s": round(behaviors / signatures_s),
            "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        print(f"{users:,} users x {args.length} behaviors: sequences {r['sequences_seconds']} s "
              f"({r['sequences_users_per_s']:,} users/s, {r['sequences_behaviors_per_s']:,} behaviors/s); "
              f"signatures {r['signatures_seconds']} s ({r['signatures_users_per_s']:,} users/s, "
              f"{r['signatures_behaviors_per_s']:,} behaviors/s); driver peak RSS {r['driver_peak_rss_mb']} MB",
              flush=True)
    spark.stop()
    small, large = results[1], results[4]
    figures = {
        **{f"small_{k}": v for k, v in small.items()},
        **{f"large_{k}": v for k, v in large.items()},
        "sequences_growth_exponent": round(math.log(large["sequences_seconds"] / small["sequences_seconds"]) / math.log(4), 3),
        "signatures_growth_exponent": round(math.log(large["signatures_seconds"] / small["signatures_seconds"]) / math.log(4), 3),
        "driver_peak_rss_growth": round(large["driver_peak_rss_mb"] / small["driver_peak_rss_mb"], 3),
    }
    print(f"growth exponent (time ~ size^k, goal <= 1.1): sequences {figures['sequences_growth_exponent']}, "
          f"signatures {figures['signatures_growth_exponent']}; driver peak memory x{figures['driver_peak_rss_growth']} for 4x the data")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
