"""seqlake sequences: silver/events -> gold/user_sequences as of the dates of
clean's look-back window ending at --date (the dates whose silver clean rewrote).

Incremental from the snapshot before the window when it exists, otherwise (or
with --full-rebuild) from all of silver up to the date; both give the same
table. Snapshots older than sequences.retention_days are deleted.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.runtime import iso_date, job_parser, parse, print_summary, settings_from
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import GOLD_USER_SEQUENCES, SILVER_EVENTS, table_uri
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions
from pipelines.sequences.behavior_sequences import genuine_behaviors, window_snapshots


def build_sequences(
    spark: SparkSession, settings: Settings, day: dt.date, full_rebuild: bool = False
) -> dict[str, object]:
    started = time.perf_counter()
    lakehouse, rules = settings.lakehouse, settings.sequences
    uri = table_uri(lakehouse, GOLD_USER_SEQUENCES)
    first = day - dt.timedelta(days=settings.clean.lookback_days)
    base_day = first - dt.timedelta(days=1)
    silver = spark.read.format("delta").load(table_uri(lakehouse, SILVER_EVENTS))
    base = None
    if not full_rebuild and DeltaTable.isDeltaTable(spark, uri):
        candidate = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, base_day)
        base = candidate if candidate.limit(1).count() else None
    since = F.col("event_date") > F.lit(base_day) if base is not None else F.lit(True)
    behaviors = genuine_behaviors(silver.where(since & (F.col("event_date") <= F.lit(day))))
    snapshots = window_snapshots(base, behaviors, first, day, rules.max_len)
    replace_date_partitions(snapshots, lakehouse, GOLD_USER_SEQUENCES, first, day)
    DeltaTable.forPath(spark, uri).delete(
        F.col("as_of_date") < F.lit(day - dt.timedelta(days=rules.retention_days))
    )

    stats = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, day).agg(
        F.count("*").alias("users"),
        F.sum("length").alias("behaviors"),
        F.percentile_approx("length", [0.5, 0.9, 0.99]).alias("p"),
        F.max("length").alias("max"),
    ).first()
    return {
        "date": day.isoformat(),
        "mode": "incremental" if base is not None else "full",
        "rewritten": f"{first}..{day}",
        "users": stats["users"],
        "behaviors": stats["behaviors"] or 0,
        "length_p50_p90_p99_max": [*(stats["p"] or [0, 0, 0]), stats["max"] or 0],
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Build gold/user_sequences as of a date.")
    parser.add_argument("--date", type=iso_date, required=True)
    parser.add_argument("--full-rebuild", action="store_true", help="rebuild from all of silver up to --date")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-sequences")
    print_summary("sequences", build_sequences(spark, settings, args.date, args.full_rebuild), as_json=args.json)


if __name__ == "__main__":
    main()
