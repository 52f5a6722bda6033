"""Two-stage denoising of clicks (after PHG-DIF): flag fake interest, delete nothing.

Stage 1 (dwell): a click whose dwell is far below what its content needs is
`short_dwell`. The need is content_length / the user's reading speed where the
content length is known, else the user's own typical dwell; both are estimated
from the data (medians, shrunk toward the population for users with few
clicks), never from the generator.
Stage 2 (bursts): clicks in a run of rapid clicks, faster than the user's own
rhythm and than a person reads, are `burst`; a user-day beyond human bounds by
volume or by machine regularity is `bot`.
Precedence when several apply: bot, then burst, then short_dwell.
"""

from __future__ import annotations

import enum

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.clickstream.schema import EventType
from pipelines.config import CleanSettings


class NoiseReason(enum.StrEnum):
    BOT = "bot"
    BURST = "burst"
    SHORT_DWELL = "short_dwell"


def population_reading(clicks: DataFrame) -> DataFrame:
    """One row: the population's median log reading speed and log dwell, the prior
    that each user's own estimate is shrunk toward."""
    read = F.col("dwell_ms") > 0
    return clicks.agg(
        F.percentile_approx(F.when(read, _log_speed()), 0.5).alias("pop_log_speed"),
        F.percentile_approx(F.when(read, F.log(F.col("dwell_ms").cast("double"))), 0.5).alias("pop_log_dwell"),
    )


def flagged_events(events: DataFrame, population: DataFrame, rules: CleanSettings) -> DataFrame:
    """`events` (sessionized, with dwell) plus `noise_reason`: null for genuine
    clicks and for every event that is not a click.

    Every statistic is a window over the user's own events (the frame is
    already partitioned by user), so the rules need no joins and no second
    pass over the data.
    """
    is_click = F.col("event_type") == EventType.CLICK.value
    read = is_click & (F.col("dwell_ms") > 0)
    user = Window.partitionBy("user_id")
    by_time = user.orderBy("ts", "event_id")
    before = by_time.rowsBetween(Window.unboundedPreceding, -1)
    previous_click_ts = F.last(F.when(is_click, F.col("ts")), ignorenulls=True).over(before)
    previous_click_date = F.last(F.when(is_click, F.col("event_date")), ignorenulls=True).over(before)

    judged = events.crossJoin(F.broadcast(population)).select(
        "*",
        F.when(read, _log_speed()).alias("_log_speed"),
        F.when(read, F.log(F.col("dwell_ms").cast("double"))).alias("_log_dwell"),
        F.when(is_click, F.col("ts") - previous_click_ts).alias("_gap_ms"),
        F.when(is_click & (previous_click_date == F.col("event_date")), F.col("ts") - previous_click_ts).alias("_day_gap_ms"),
    )
    k = float(rules.prior_clicks)

    def shrunk(log_values: str, prior: str) -> Column:
        n = F.count(log_values).over(user)
        own = F.coalesce(F.percentile_approx(log_values, 0.5).over(user), F.lit(0.0))
        return F.exp((own * n + F.col(prior) * k) / (n + k))

    # Stage 1: what the content needs, from the user's reading speed or typical dwell.
    speed, typical_dwell_ms = shrunk("_log_speed", "pop_log_speed"), shrunk("_log_dwell", "pop_log_dwell")
    needed_ms = F.coalesce(F.col("content_length") * 1000.0 / speed, typical_dwell_ms)
    short_dwell = F.col("dwell_ms") < F.greatest(
        F.lit(rules.dwell_floor_s * 1000.0), needed_ms * rules.min_read_fraction
    )
    # Stage 2a: runs of clicks each faster than the user's usual gap allows.
    burst_gap_ms = F.least(
        F.lit(rules.burst_max_gap_s * 1000.0),
        F.percentile_approx("_gap_ms", 0.75).over(user) * rules.burst_rhythm_fraction,
    )
    starts_run = is_click & (F.col("_gap_ms").isNull() | (F.col("_gap_ms") > F.col("_burst_gap_ms")))
    runs = judged.withColumn("_burst_gap_ms", burst_gap_ms).withColumn(
        "_run", F.sum(starts_run.cast("int")).over(by_time.rowsBetween(Window.unboundedPreceding, 0))
    )
    in_burst = F.count(F.when(is_click, 1)).over(Window.partitionBy("user_id", "_run")) >= rules.burst_min_clicks
    # Stage 2b: a user-day beyond human bounds, by volume or machine regularity.
    day = Window.partitionBy("user_id", "event_date")
    day_clicks = F.count(F.when(is_click, 1)).over(day)
    gap_cv = F.stddev_samp("_day_gap_ms").over(day) / F.mean("_day_gap_ms").over(day)
    bot = (day_clicks > rules.bot_max_daily_clicks) | (
        (day_clicks >= rules.bot_min_clicks) & (gap_cv < rules.bot_max_gap_cv)
    )
    reason = (
        F.when(~is_click, F.lit(None))
        .when(bot, F.lit(NoiseReason.BOT.value))
        .when(in_burst, F.lit(NoiseReason.BURST.value))
        .when(short_dwell, F.lit(NoiseReason.SHORT_DWELL.value))
    )
    return runs.select(*events.columns, reason.cast("string").alias("noise_reason"))


def _log_speed() -> Column:
    """Content units read per second, in log space."""
    return F.log(F.col("content_length") * 1000.0 / F.col("dwell_ms"))
