"""Sequences: silver/events -> gold/user_sequences, gold/user_stats and gold/item_stats as of the dates clean rewrote.

Incremental from the snapshot before the rewritten dates when it exists,
otherwise (or with a full rebuild) from all of silver up to the last date;
both give the same table. As-of dates older than sequences.retention_days
are deleted.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession

from pipelines.config import Settings
from pipelines.engagement.statistics import engagement_statistics
from pipelines.lakehouse.continuity import require_unbroken_past
from pipelines.lakehouse.dates import days_between, oldest_kept, rewritten_dates
from pipelines.lakehouse.ledger import Run, now_utc, recorded_run
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


def build_sequences(
    spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None, full_rebuild: bool = False
) -> dict[str, object]:
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.sequences
    first, last = rewritten_dates(start, end, settings.clean.lookback_days)
    require_unbroken_past(lakehouse, "sequences", (start, end), first, inputs=("clean",))
    run = Run("sequences", days_between(first, last), now_utc(), tables=(GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS),
              nights=days_between(start, end))
    with recorded_run(lakehouse, run) as figures:
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
        figures["mode"] = "incremental" if base is not None else "full"
        figures.update(sequence_summary(read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, last)))
    return figures
