"""Deduplication, sessions and dwell: bronze rows -> one row per event, in sessions.

All per-user work uses window functions partitioned by user, which Spark
spills to disk for a user too large for memory; nothing is gathered into a
Python object.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines.clickstream.schema import EventType

OBSERVED, DERIVED = "observed", "derived"


def deduplicated_events(bronze: DataFrame) -> DataFrame:
    """One row per event_id: the copy that landed first (at-least-once delivery repeats events)."""
    first_landed = Window.partitionBy("event_id").orderBy("landing_date", "ingest_ts", "source_file")
    return (
        bronze.withColumn("_copy", F.row_number().over(first_landed))
        .where(F.col("_copy") == 1)
        .drop("_copy")
    )


def sessionized_events(events: DataFrame, gap_minutes: int) -> DataFrame:
    """Events with `session_id`: a user's session ends after `gap_minutes` without events.

    The id is `<user_id>-<epoch ms of the session's first event>`, so reruns
    and rebuilds give the same ids.
    """
    by_time = Window.partitionBy("user_id").orderBy("ts", "event_id")
    gap_ms = gap_minutes * 60_000
    starts = events.withColumn(
        "_starts_session",
        F.coalesce(F.col("ts") - F.lag("ts").over(by_time) > gap_ms, F.lit(True)),
    ).withColumn(
        "_session_start_ms",
        F.max(F.when(F.col("_starts_session"), F.col("ts"))).over(
            by_time.rowsBetween(Window.unboundedPreceding, Window.currentRow)
        ),
    )
    return starts.withColumn(
        "session_id", F.concat_ws("-", F.col("user_id").cast("string"), F.col("_session_start_ms").cast("string"))
    ).drop("_starts_session", "_session_start_ms")


def events_with_dwell(sessions: DataFrame, max_derived_dwell_minutes: int) -> DataFrame:
    """Clicks keep an observed dwell; where the source gave none, dwell is the time
    to the user's next event in the same session, capped. `dwell_source` says which
    (null where neither is known: the last click of a session without a dwell)."""
    # Ordered within the user, as sessions were built: no new partitioning.
    by_time = Window.partitionBy("user_id").orderBy("ts", "event_id")
    same_session = F.lead("session_id").over(by_time) == F.col("session_id")
    to_next = F.when(same_session, F.lead("ts").over(by_time) - F.col("ts"))
    # least() skips nulls: without a next event there is nothing to derive.
    derived = F.when(to_next.isNotNull(), F.least(to_next, F.lit(max_derived_dwell_minutes * 60_000)))
    is_click = F.col("event_type") == EventType.CLICK.value
    return sessions.withColumn("_derived", derived).select(
        *[c for c in sessions.columns if c != "dwell_ms"],
        F.when(is_click, F.coalesce("dwell_ms", "_derived")).alias("dwell_ms"),
        F.when(is_click & F.col("dwell_ms").isNotNull(), F.lit(OBSERVED))
        .when(is_click & F.col("_derived").isNotNull(), F.lit(DERIVED))
        .alias("dwell_source"),
    )
