"""Bronze -> silver: the whole clean stage as one pure transformation."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.denoise import flagged_events, population_reading
from pipelines.clickstream.schema import EventType
from pipelines.clickstream.sessions import (
    deduplicated_events,
    events_with_dwell,
    sessionized_events,
)
from pipelines.config import CleanSettings

SILVER_COLUMNS = [
    "event_id", "event_type", "user_id", "item_id", "ts", "event_ts", "category_id",
    "impression_id", "position", "dwell_ms", "dwell_source", "content_length", "session_id",
    "noise_reason", "source_file", "landing_date", "ingest_ts", "event_date",
]


def clean_window(day: dt.date, rules: CleanSettings) -> tuple[dt.date, dt.date, dt.date]:
    """(context start, first rewritten event date, last) for the clean run of `day`.

    The run rewrites the event dates of its look-back window, from bronze rows
    that landed up to `day` (so a rerun sees what the first run saw); the day
    before the window is read as context only, so sessions and user profiles
    that span the window's start are the same in every run.
    """
    first = day - dt.timedelta(days=rules.lookback_days)
    return first - dt.timedelta(days=1), first, day


def silver_events(bronze: DataFrame, day: dt.date, rules: CleanSettings) -> DataFrame:
    """Silver rows of the event dates rewritten by the clean run of `day`."""
    context, first, last = clean_window(day, rules)
    window = bronze.where(
        F.col("landing_date").between(F.lit(context), F.lit(last))
        & F.col("event_date").between(F.lit(context), F.lit(last))
    )
    sessions = sessionized_events(deduplicated_events(window), rules.session_gap_minutes)
    # The prior is a median: taken from the window's clicks before dedup, it costs
    # one cheap aggregate instead of a second pass over the sessionized events.
    population = population_reading(window.where(F.col("event_type") == EventType.CLICK.value))
    flagged = flagged_events(events_with_dwell(sessions, rules.max_derived_dwell_minutes), population, rules)
    return flagged.where(F.col("event_date").between(F.lit(first), F.lit(last))).select(*SILVER_COLUMNS)


def noise_metrics(silver: DataFrame) -> DataFrame:
    """Events per event date, event type and noise reason (null reason = genuine)."""
    return silver.groupBy("event_date", "event_type", "noise_reason").agg(F.count("*").alias("events"))
