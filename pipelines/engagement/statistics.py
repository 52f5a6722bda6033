"""Per user and per item, engagement over the `days` event dates up to each as-of date.

Counts are over genuine behavior only (noise flags respected), and the
impressions of user-days flagged as bots are left out, so that a bot's
browsing dilutes no item's click-through. Everything is a sum of daily
aggregates, so a range of as-of dates costs one pass over silver.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.clean import bot_days
from pipelines.clickstream.schema import EventType
from pipelines.sequences.behavior_sequences import BEHAVIORS


def stats_window(first: dt.date, days: int) -> dt.date:
    """The oldest event date that statistics as of `first` over `days` days read."""
    return first - dt.timedelta(days=days - 1)


def engagement_statistics(silver: DataFrame, who: str, first: dt.date, last: dt.date, days: int) -> DataFrame:
    """Per `who` ("user" or "item") and as-of date in [first, last]:
    {who}_impressions, {who}_clicks (genuine), {who}_actions (genuine clicks and
    e-commerce actions), {who}_ctr, {who}_dwell_mean_ms (of genuine clicks) over
    the event dates (as_of - days, as_of]; items also carry their category_id.

    `silver` must cover the event dates [stats_window(first, days), last].
    """
    key = f"{who}_id"
    window = silver.where(F.col("event_date").between(F.lit(stats_window(first, days)), F.lit(last)))
    humans = window.join(bot_days(window), ["user_id", "event_date"], "left_anti")
    genuine = F.col("noise_reason").isNull()
    is_click = F.col("event_type") == EventType.CLICK.value
    genuine_click = is_click & genuine
    daily = humans.groupBy(key, "event_date").agg(
        F.sum((F.col("event_type") == EventType.IMPRESSION.value).cast("long")).alias("impressions"),
        F.sum(genuine_click.cast("long")).alias("clicks"),
        F.sum((genuine & F.col("event_type").isin([b.value for b in BEHAVIORS])).cast("long")).alias("actions"),
        F.sum(F.when(genuine_click, F.col("dwell_ms"))).alias("dwell_sum"),
        F.count(F.when(genuine_click, F.col("dwell_ms"))).alias("dwell_count"),
        F.max("category_id").alias("category_id"),
    )
    # Each day counts toward the as-of dates from itself to `days` - 1 days later.
    spread = daily.select(
        "*", F.explode(F.sequence("event_date", F.date_add("event_date", days - 1))).alias("as_of_date")
    ).where(F.col("as_of_date").between(F.lit(first), F.lit(last)))
    totals = spread.groupBy(key, "as_of_date").agg(
        F.sum("impressions").alias(f"{who}_impressions"),
        F.sum("clicks").alias(f"{who}_clicks"),
        F.sum("actions").alias(f"{who}_actions"),
        F.try_divide(F.sum("dwell_sum"), F.sum("dwell_count")).alias(f"{who}_dwell_mean_ms"),
        F.max("category_id").alias("category_id"),
    )
    ctr = F.when(F.col(f"{who}_impressions") > 0, F.col(f"{who}_clicks") / F.col(f"{who}_impressions"))
    columns = [key, f"{who}_impressions", f"{who}_clicks", f"{who}_actions", ctr.alias(f"{who}_ctr"), f"{who}_dwell_mean_ms"]
    if who == "item":
        columns.append("category_id")
    return totals.select(*columns, "as_of_date")
