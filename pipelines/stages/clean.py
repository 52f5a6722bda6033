"""Clean: bronze/events -> silver/events (dedup, sessions, dwell, noise flags) and silver/noise_metrics."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession

from pipelines.clickstream.clean import (
    CleanWindow,
    clean_summary,
    noise_metrics,
    prepared_events,
    silver_events,
)
from pipelines.clickstream.denoise_quality import proxy_figures
from pipelines.clickstream.publish import require_finished_ingests
from pipelines.config import CleanSettings, Settings
from pipelines.lakehouse.continuity import require_unbroken_past
from pipelines.lakehouse.dates import days_between
from pipelines.lakehouse.ledger import Run, now_utc, recorded_run
from pipelines.lakehouse.session import persisted
from pipelines.lakehouse.tables import BRONZE_EVENTS, SILVER_EVENTS, SILVER_NOISE_METRICS
from pipelines.lakehouse.writes import read_date_partitions, read_table, replace_date_partitions
from pipelines.quality.gate import audit_and_publish_dates, published_rates, published_volumes
from pipelines.quality.suites import NOISE_RATE, silver_events_suite


def clean_dates(spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None) -> dict[str, object]:
    """Clean the event dates that the nightly runs of start..end rewrite, in one pass."""
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.clean
    window = CleanWindow.of(start, end, rules)
    require_unbroken_past(lakehouse, "clean", (start, end), window.first, inputs=("ingest",))
    require_finished_ingests(spark, lakehouse, window.bronze_rows(settings.ingest))
    run = Run("clean", days_between(window.first, window.last), now_utc(), tables=(SILVER_EVENTS, SILVER_NOISE_METRICS),
              nights=days_between(start, end))
    with recorded_run(lakehouse, run) as figures:
        bronze = read_table(spark, lakehouse, BRONZE_EVENTS)
        with persisted(prepared_events(bronze, window, rules, settings.ingest)) as events:
            history = settings.quality.history_days
            noise = published_rates(spark, lakehouse, SILVER_EVENTS, NOISE_RATE, window.first, history)
            volumes = published_volumes(spark, lakehouse, SILVER_EVENTS, window.first, history)
            audit_and_publish_dates(spark, silver_events(events, window, rules), lakehouse, SILVER_EVENTS, window.first, window.last,
                                    silver_events_suite(noise, newest=end, volume_history=volumes), userMetadata=run.commit_tag)
        written = read_date_partitions(spark, lakehouse, SILVER_EVENTS, window.first, window.last)
        replace_date_partitions(noise_metrics(written), lakehouse, SILVER_NOISE_METRICS, window.first, window.last,
                                userMetadata=run.commit_tag)
        figures.update(clean_summary(
            bronze.where(window.bronze_rows(settings.ingest) & window.rewritten_rows()),
            written,
            read_date_partitions(spark, lakehouse, SILVER_NOISE_METRICS, end),
        ))
        figures["proxy"] = night_proxy(written, window, rules)
    return figures


def night_proxy(written: DataFrame, window: CleanWindow, rules: CleanSettings) -> dict[str, object] | None:
    """The flags against evidence of interest (denoise_quality.proxy_figures)
    on the clicks of the dates the run rewrote, with the evidence that those
    dates hold so far (a click of the last one has none yet): what the night's
    report shows. None without clicks."""
    figures = proxy_figures(written, window.first, window.last, rules)
    return {"clicks_of": f"{window.first}..{window.last}", **figures} if figures["clicks"] else None
