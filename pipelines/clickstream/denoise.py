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


def reading_profiles(clicks: DataFrame, rules: CleanSettings) -> DataFrame:
    """Per user: `speed` (content units per second) and `typical_dwell_ms`.

    Medians are taken in log space and shrunk toward the population median by
    `prior_clicks` pseudo-clicks, so a user with two clicks gets mostly the
    population's profile and a heavy reader mostly their own.
    """
    with_dwell = clicks.where(F.col("dwell_ms") > 0).select(
        "user_id",
        F.log(F.col("content_length") * 1000.0 / F.col("dwell_ms")).alias("log_speed"),
        F.log(F.col("dwell_ms").cast("double")).alias("log_dwell"),
    )
    population = with_dwell.agg(
        F.percentile_approx("log_speed", 0.5).alias("pop_log_speed"),
        F.percentile_approx("log_dwell", 0.5).alias("pop_log_dwell"),
    )
    users = with_dwell.groupBy("user_id").agg(
        F.percentile_approx("log_speed", 0.5).alias("user_log_speed"),
        F.count("log_speed").alias("speed_clicks"),
        F.percentile_approx("log_dwell", 0.5).alias("user_log_dwell"),
        F.count("log_dwell").alias("dwell_clicks"),
    )
    k = float(rules.prior_clicks)

    def shrunk(user: str, n: str, prior: str) -> Column:
        return F.exp(
            (F.coalesce(F.col(user), F.lit(0.0)) * F.col(n) + F.col(prior) * k) / (F.col(n) + k)
        )

    return users.crossJoin(F.broadcast(population)).select(
        "user_id",
        shrunk("user_log_speed", "speed_clicks", "pop_log_speed").alias("speed"),
        shrunk("user_log_dwell", "dwell_clicks", "pop_log_dwell").alias("typical_dwell_ms"),
    )


def short_dwell(rules: CleanSettings) -> Column:
    """Stage 1 rule over clicks joined with their reading profile (null where dwell is unknown)."""
    needed_ms = F.coalesce(
        F.col("content_length") * 1000.0 / F.col("speed"), F.col("typical_dwell_ms")
    )
    threshold_ms = F.greatest(F.lit(rules.dwell_floor_s * 1000.0), needed_ms * rules.min_read_fraction)
    return F.col("dwell_ms") < threshold_ms


def clicks_in_bursts(clicks: DataFrame, rules: CleanSettings) -> DataFrame:
    """`event_id`, `in_burst` for each click: part of a run of at least
    `burst_min_clicks` clicks whose gaps are all below the user's burst gap."""
    by_time = Window.partitionBy("user_id").orderBy("ts", "event_id")
    gaps = clicks.select(
        "event_id", "user_id", "ts", (F.col("ts") - F.lag("ts").over(by_time)).alias("gap_ms")
    )
    rhythm = gaps.groupBy("user_id").agg(
        F.least(
            F.lit(rules.burst_max_gap_s * 1000.0),
            F.percentile_approx("gap_ms", 0.75) * rules.burst_rhythm_fraction,
        ).alias("burst_gap_ms")
    )
    runs = (
        gaps.join(rhythm, "user_id")
        .withColumn(
            "_new_run",
            F.when(F.col("gap_ms").isNull() | (F.col("gap_ms") > F.col("burst_gap_ms")), 1).otherwise(0),
        )
        .withColumn("_run", F.sum("_new_run").over(by_time.rowsBetween(Window.unboundedPreceding, 0)))
    )
    run_sizes = runs.groupBy("user_id", "_run").agg(F.count("*").alias("_run_size"))
    return runs.join(run_sizes, ["user_id", "_run"]).select(
        "event_id", (F.col("_run_size") >= rules.burst_min_clicks).alias("in_burst")
    )


def bot_user_days(clicks: DataFrame, rules: CleanSettings) -> DataFrame:
    """`user_id`, `event_date` of user-days beyond human bounds."""
    by_time = Window.partitionBy("user_id", "event_date").orderBy("ts", "event_id")
    gaps = clicks.select(
        "user_id", "event_date", (F.col("ts") - F.lag("ts").over(by_time)).alias("gap_ms")
    )
    days = gaps.groupBy("user_id", "event_date").agg(
        F.count("*").alias("clicks"),
        (F.stddev_samp("gap_ms") / F.mean("gap_ms")).alias("gap_cv"),
    )
    superhuman = (F.col("clicks") > rules.bot_max_daily_clicks) | (
        (F.col("clicks") >= rules.bot_min_clicks) & (F.col("gap_cv") < rules.bot_max_gap_cv)
    )
    return days.where(superhuman).select("user_id", "event_date")


def flagged_events(events: DataFrame, rules: CleanSettings) -> DataFrame:
    """`events` (sessionized, with dwell) plus `noise_reason`: null for genuine
    clicks and for every event that is not a click."""
    is_click = F.col("event_type") == EventType.CLICK.value
    clicks = events.where(is_click)
    profiles = reading_profiles(clicks, rules)
    bursts = clicks_in_bursts(clicks, rules)
    bots = bot_user_days(clicks, rules).withColumn("_bot", F.lit(True))
    judged = (
        clicks.join(profiles, "user_id", "left")
        .join(bursts, "event_id", "left")
        .join(bots, ["user_id", "event_date"], "left")
    )
    reason = (
        F.when(F.col("_bot"), F.lit(NoiseReason.BOT.value))
        .when(F.col("in_burst"), F.lit(NoiseReason.BURST.value))
        .when(short_dwell(rules), F.lit(NoiseReason.SHORT_DWELL.value))
    )
    flagged_clicks = judged.select(*events.columns, reason.alias("noise_reason"))
    others = events.where(~is_click).withColumn("noise_reason", F.lit(None).cast("string"))
    return flagged_clicks.unionByName(others)
