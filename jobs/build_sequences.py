"""seqlake sequences: silver/events -> gold/user_sequences, gold/user_stats and
gold/item_stats as of the dates that clean rewrote.

    seqlake sequences --date D [--full-rebuild]       one night: as of D - lookback .. D
    seqlake sequences --start D1 --end D2             a range of nights in one pass

Incremental from the snapshot before the rewritten dates when it exists,
otherwise (or with --full-rebuild) from all of silver up to the last date;
both give the same table. As-of dates older than sequences.retention_days
are deleted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from pyspark.sql import SparkSession

from jobs.cli import add_night_arguments, nights, run_command
from pipelines.config import Settings
from pipelines.engagement.statistics import engagement_statistics
from pipelines.lakehouse.continuity import require_unbroken_past
from pipelines.lakehouse.dates import days_between, oldest_kept, rewritten_dates
from pipelines.lakehouse.ledger import Run, now_utc, record_run, unfinished_runs
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import (
    GOLD_ITEM_STATS,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SILVER_EVENTS,
)
from pipelines.lakehouse.writes import (
    delete_partitions_before,
    read_date_partitions,
    read_table,
    replace_date_partitions,
    table_exists,
)
from pipelines.quality.gate import audit_and_publish_dates
from pipelines.quality.suites import user_sequences_suite
from pipelines.sequences.behavior_sequences import base_snapshot_date, sequence_summary, snapshots


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)
    parser.add_argument("--full-rebuild", action="store_true", help="rebuild from all of silver up to the last date")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return build_sequences(spark_session(settings.spark, "seqlake-sequences"), settings, *nights(args), args.full_rebuild)


def build_sequences(
    spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None, full_rebuild: bool = False
) -> dict[str, object]:
    started, began = time.perf_counter(), now_utc()
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.sequences
    first, last = rewritten_dates(start, end, settings.clean.lookback_days)
    require_unbroken_past(lakehouse, "sequences", (start, end), first, inputs=("clean",))
    run = Run("sequences", days_between(first, last), began, tables=(GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS),
              nights=days_between(start, end))
    healed = unfinished_runs(lakehouse, "sequences", run.tables)
    silver = read_table(spark, lakehouse, SILVER_EVENTS)
    base = None
    if not full_rebuild and table_exists(spark, lakehouse, GOLD_USER_SEQUENCES):
        candidate = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, base_snapshot_date(first))
        base = candidate if candidate.limit(1).count() else None
    audit_and_publish_dates(spark, snapshots(silver, base, first, last, rules.max_len), lakehouse, GOLD_USER_SEQUENCES,
                            first, last, user_sequences_suite(rules.max_len), userMetadata=run.commit_tag)
    for who, table in (("user", GOLD_USER_STATS), ("item", GOLD_ITEM_STATS)):
        stats = engagement_statistics(silver, who, first, last, settings.examples.stats_days)
        replace_date_partitions(stats, lakehouse, table, first, last, userMetadata=run.commit_tag)
    for table in (GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS):
        delete_partitions_before(spark, lakehouse, table, oldest_kept(first, last, rules.retention_days))
    figures = {
        "date": last.isoformat() if start == end else f"{start}..{end}",
        "mode": "incremental" if base is not None else "full",
        "rewritten": f"{first}..{last}",
        **sequence_summary(read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, last)),
        "healed": healed,
    }
    record_run(lakehouse, run, figures)
    return {**figures, "seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__":
    run_command("sequences")
