"""seqlake sequences: silver/events -> gold/user_sequences, gold/user_stats and
gold/item_stats as of the dates that clean rewrote.

    seqlake sequences --date D [--full-rebuild]       one night: as of D - lookback .. D
    seqlake sequences --start D1 --end D2             a range of nights in one pass

Incremental from the snapshot before the rewritten dates when it exists,
otherwise (or with --full-rebuild) from all of silver up to the last date;
both give the same table. Snapshots and statistics older than
sequences.retention_days are deleted.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.runtime import add_date_range_arguments, date_range, job_parser, parse, print_summary, run_job, settings_from
from pipelines.config import Settings
from pipelines.engagement.statistics import engagement_statistics
from pipelines.lakehouse.dates import days_between, oldest_kept, rewritten_dates
from pipelines.lakehouse.ledger import Run, now_utc, record_run
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import GOLD_ITEM_STATS, GOLD_USER_SEQUENCES, GOLD_USER_STATS, SILVER_EVENTS
from pipelines.lakehouse.writes import (
    delete_partitions_before,
    read_date_partitions,
    read_table,
    replace_date_partitions,
    table_exists,
)
from pipelines.sequences.behavior_sequences import genuine_behaviors, window_snapshots


def build_sequences(
    spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None, full_rebuild: bool = False
) -> dict[str, object]:
    started, began = time.perf_counter(), now_utc()
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.sequences
    first, last = rewritten_dates(start, end, settings.clean.lookback_days)
    base_day = first - dt.timedelta(days=1)
    silver = read_table(spark, lakehouse, SILVER_EVENTS)
    base = None
    if not full_rebuild and table_exists(spark, lakehouse, GOLD_USER_SEQUENCES):
        candidate = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, base_day)
        base = candidate if candidate.limit(1).count() else None
    since = F.col("event_date") > F.lit(base_day) if base is not None else F.lit(True)
    behaviors = genuine_behaviors(silver.where(since & (F.col("event_date") <= F.lit(last))))
    replace_date_partitions(window_snapshots(base, behaviors, first, last, rules.max_len), lakehouse, GOLD_USER_SEQUENCES, first, last)
    for who, table in (("user", GOLD_USER_STATS), ("item", GOLD_ITEM_STATS)):
        stats = engagement_statistics(silver, who, first, last, settings.examples.stats_days)
        replace_date_partitions(stats, lakehouse, table, first, last)
    for table in (GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS):
        delete_partitions_before(spark, lakehouse, table, oldest_kept(first, last, rules.retention_days))

    stats = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, last).agg(
        F.count("*").alias("users"),
        F.sum("length").alias("behaviors"),
        F.percentile_approx("length", [0.5, 0.9, 0.99]).alias("p"),
        F.max("length").alias("max"),
    ).first()
    figures = {
        "date": last.isoformat() if start == end else f"{start}..{end}",
        "mode": "incremental" if base is not None else "full",
        "rewritten": f"{first}..{last}",
        "users": stats["users"],
        "behaviors": stats["behaviors"] or 0,
        "length_p50_p90_p99_max": [*(stats["p"] or [0, 0, 0]), stats["max"] or 0],
    }
    run = Run("sequences", days_between(first, last), began, tables=(GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS))
    record_run(lakehouse, run, figures)
    return {**figures, "seconds": round(time.perf_counter() - started, 2)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Build gold/user_sequences and the engagement statistics as of a night's dates.")
    add_date_range_arguments(parser)
    parser.add_argument("--full-rebuild", action="store_true", help="rebuild from all of silver up to the last date")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    start, end = date_range(parser, args)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-sequences")
    figures = run_job("sequences", lambda: build_sequences(spark, settings, start, end, args.full_rebuild))
    print_summary("sequences", figures, as_json=args.json)


if __name__ == "__main__":
    main()
