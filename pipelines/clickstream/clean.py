"""Bronze -> silver: which dates a clean run rewrites and reads, and the transformation.

A run for the dates [start, end] (a night is start = end) rewrites the event
dates [start - lookback_days, end]: late events of those dates may have landed
since. It reads every bronze row of those dates whatever its landing date, so
that rerunning an old night after later nights have run keeps the late events
they added, and it reads the profile_days (plus one day of session context)
before them, so that every date's statistics are complete. The result for a
date therefore depends on the data, not on which run wrote it: a range run
equals the nightly runs of its dates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.denoise import NoiseReason, flagged_events
from pipelines.clickstream.sessions import (
    deduplicated_events,
    events_with_dwell,
    sessionized_events,
)
from pipelines.config import CleanSettings, IngestSettings
from pipelines.errors import ConservationError
from pipelines.lakehouse.dates import rewritten_dates
from pipelines.lakehouse.tables import SILVER_EVENTS

SILVER_COLUMNS = SILVER_EVENTS.schema.names


@dataclasses.dataclass(frozen=True)
class CleanWindow:
    """The event dates a run rewrites ([first, last]) and reads ([context, last])."""

    context: dt.date
    first: dt.date
    last: dt.date

    @classmethod
    def of(cls, start: dt.date, end: dt.date, rules: CleanSettings) -> CleanWindow:
        first, last = rewritten_dates(start, end, rules.lookback_days)
        return cls(context=first - dt.timedelta(days=rules.profile_days + 1), first=first, last=last)

    def bronze_rows(self, lateness: IngestSettings) -> F.Column:
        """Bronze rows of the read dates. An event lands at most a day (clock skew)
        before its date and at most max_lateness_days after it: bounds on
        landing_date that prune partitions without losing a row."""
        landed = F.col("landing_date").between(
            F.lit(self.context - dt.timedelta(days=1)),
            F.lit(self.last + dt.timedelta(days=lateness.max_lateness_days + 1)),
        )
        return landed & F.col("event_date").between(F.lit(self.context), F.lit(self.last))

    def rewritten_rows(self) -> F.Column:
        return F.col("event_date").between(F.lit(self.first), F.lit(self.last))


def prepared_events(bronze: DataFrame, window: CleanWindow, rules: CleanSettings, lateness: IngestSettings) -> DataFrame:
    """Bronze rows of the window's read dates, deduplicated, sessionized, with dwell."""
    read = bronze.where(window.bronze_rows(lateness))
    return events_with_dwell(
        sessionized_events(deduplicated_events(read), rules.session_gap_minutes), rules.max_derived_dwell_minutes
    )


def silver_events(events: DataFrame, window: CleanWindow, rules: CleanSettings) -> DataFrame:
    """Silver rows of the dates the run rewrites, from `prepared_events`."""
    return flagged_events(events, window.first, window.last, rules).select(*SILVER_COLUMNS)


def clean_summary(bronze_rewritten: DataFrame, silver_written: DataFrame, metrics_of_date: DataFrame) -> dict[str, object]:
    """The run's figures, after checking that silver holds one row per distinct
    bronze event of the rewritten dates (ConservationError otherwise)."""
    bronze = bronze_rewritten.agg(F.count("*").alias("rows"), F.countDistinct("event_id").alias("events")).first()
    silver_rows = silver_written.count()
    if silver_rows != bronze["events"]:
        raise ConservationError(f"silver has {silver_rows} rows for {bronze['events']} distinct bronze events")
    metrics = sorted(metrics_of_date.collect(), key=lambda r: r["noise_reason"] or "")
    return {
        "bronze_rows": bronze["rows"],
        "duplicates_dropped": bronze["rows"] - silver_rows,
        "silver_rows": silver_rows,
        "events_of_date": sum(row["events"] for row in metrics),
        "clicks_by_reason": {
            (row["noise_reason"] or "genuine"): row["events"] for row in metrics if row["event_type"] == "click"
        },
    }


def noise_metrics(silver: DataFrame) -> DataFrame:
    """Events per event date, event type and noise reason (null reason = genuine)."""
    return silver.groupBy("event_date", "event_type", "noise_reason").agg(F.count("*").alias("events"))


def bot_days(silver: DataFrame) -> DataFrame:
    """(user_id, event_date) of the user-days whose clicks clean flagged as a bot's."""
    return silver.where(F.col("noise_reason") == NoiseReason.BOT.value).select("user_id", "event_date").distinct()
