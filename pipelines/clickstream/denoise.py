"""Two-stage denoising of clicks (after PHG-DIF): flag fake interest, delete nothing.

Stage 1 (dwell): a read is `short_dwell` when it is far shorter than what the
item needs from this reader. An item's need is its typical read across users
(the median log dwell of its reads), shrunk toward a prior where it has few
reads: a line fitted on content length where the source reports one, else
the population's median. A reader's speed is the median of their reads
relative to the items' needs, shrunk toward zero. The cut is taken from the
day's residuals themselves: the lowest `short_dwell_tail` of a robust normal
fit (median and interquartile range). Glances (under `glance_s`) are left alone.
Stage 2 (bursts and bots): clicks in a run of rapid clicks, faster than the
user's own rhythm and than a person reads, are `burst`; a user-day whose
volume, click-through, regularity and spread over the day are together
outliers of the same day's population is `bot`, unless the way it clicks
(click-through, regularity) is usual: a heavy reader only clicks more.
Precedence when several apply: bot, then burst, then short_dwell.

Point in time: the flags of a date depend on the events of that date and the
`profile_days` before it only, so a later date's data never changes them and
any run that writes a date (nightly or a range) gives it the same flags.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import statistics

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from scipy.stats import chi2

from pipelines.clickstream.quantiles import binned_quantiles, quantile_column
from pipelines.clickstream.schema import EventType
from pipelines.config import CleanSettings

# The interquartile range of a normal distribution, in standard deviations.
_IQR_SIGMAS = 1.349
# Items with fewer reads do not inform the content-length line; fewer such items, no line.
_LINE_MIN_READS, _LINE_MIN_ITEMS = 3, 30
# How much a user-day clicks, and how: a bot is an outlier in both.
_BOT_AMOUNT = ("volume", "hours")
_BOT_MANNER = ("click_through", "regularity")


class NoiseReason(enum.StrEnum):
    BOT = "bot"
    BURST = "burst"
    SHORT_DWELL = "short_dwell"


def profiled_clicks(events: DataFrame, rules: CleanSettings) -> DataFrame:
    """The clicks of `events` (sessionized, with dwell; partitioned by user) with
    what the rules read of each: the in-session gap to the user's previous
    click, the log dwell of a read (null for a glance or unknown dwell) and the
    log content length."""
    clicks = events.where(F.col("event_type") == EventType.CLICK.value).select(
        "event_id", "user_id", "item_id", "event_date", "ts", "session_id", "dwell_ms", "content_length"
    )
    by_time = Window.partitionBy("user_id").orderBy("ts", "event_id")
    same_session = F.lag("session_id").over(by_time) == F.col("session_id")
    is_read = F.col("dwell_ms") >= rules.glance_s * 1000
    return clicks.select(
        "*",
        F.when(same_session, F.col("ts") - F.lag("ts").over(by_time)).alias("gap_ms"),
        F.when(is_read & (F.col("dwell_ms") > 0), F.log(F.col("dwell_ms") / 1000.0)).alias("log_dwell"),
        F.when(F.col("content_length") > 0, F.log(F.col("content_length").cast("double"))).alias("log_length"),
    )


def flagged_events(events: DataFrame, first: dt.date, last: dt.date, rules: CleanSettings) -> DataFrame:
    """Events of dates [first, last] with `noise_reason` (null for genuine clicks
    and for every event that is not a click).

    `events`: deduplicated, sessionized, with dwell, covering the dates
    [first - profile_days - 1, last] so that every statistic of [first, last]
    (and every session crossing into it) is complete.
    """
    clicks = profiled_clicks(events, rules)
    # Profiles also for the day before `first`: a burst may run across midnight.
    profiles = reading_profiles(clicks, first - dt.timedelta(days=1), last, rules)
    # Materialized once: the day's residual distribution and the flags both read it.
    judged = (
        clicks.where(F.col("event_date") >= F.lit(first - dt.timedelta(days=1)))
        .join(profiles, ["user_id", "item_id", "event_date"], "left")
        .localCheckpoint()
    )
    short = short_dwell(judged, rules)
    bursts = burst_clicks(short, rules)
    bots = bot_user_days(events, clicks, first, last, rules)
    flagged = bursts.where(F.col("event_date") >= F.lit(first)).join(bots, ["user_id", "event_date"], "left")
    reason = (
        F.when(F.col("_bot"), F.lit(NoiseReason.BOT.value))
        .when(F.col("_burst"), F.lit(NoiseReason.BURST.value))
        .when(F.col("_short"), F.lit(NoiseReason.SHORT_DWELL.value))
    )
    reasons = flagged.select("event_id", reason.alias("noise_reason"))
    return events.where(F.col("event_date").between(F.lit(first), F.lit(last))).join(reasons, "event_id", "left")


def reading_profiles(clicks: DataFrame, first: dt.date, last: dt.date, rules: CleanSettings) -> DataFrame:
    """Per (user_id, item_id, event_date) of the clicks of [first, last]: the log
    read time the item needs (`need`), the reader's speed relative to needs
    (`speed`) and the user's 75th-percentile in-session gap (`usual_gap_ms`),
    all from the clicks of that date and the profile_days before it."""
    k = float(rules.prior_clicks)
    # Each click informs the profiles of its own date and the profile_days after it.
    contributions = clicks.select(
        "user_id", "item_id", "log_dwell", "log_length", "gap_ms",
        F.explode(F.sequence("event_date", F.date_add("event_date", rules.profile_days))).alias("profile_date"),
    ).where(F.col("profile_date").between(F.lit(first), F.lit(last)))
    reads = contributions.where(F.col("log_dwell").isNotNull())

    items = reads.groupBy("item_id", "profile_date").agg(
        # Exact below 10,000 reads a group (percentile_approx's default accuracy).
        F.percentile_approx("log_dwell", 0.5).alias("_item_median"),
        F.count("*").alias("_item_reads"),
        F.max("log_length").alias("log_length"),
    )
    population = binned_quantiles(reads, "profile_date", ["log_dwell"], [0.5]).withColumnRenamed(quantile_column("log_dwell", 0.5), "_population")
    line = (
        items.where((F.col("_item_reads") >= _LINE_MIN_READS) & F.col("log_length").isNotNull())
        .groupBy("profile_date")
        .agg(
            F.count("*").alias("_line_items"),
            F.covar_samp("_item_median", "log_length").alias("_cov"),
            F.var_samp("log_length").alias("_var"),
            F.mean("_item_median").alias("_mean_median"),
            F.mean("log_length").alias("_mean_length"),
        )
        .where((F.col("_line_items") >= _LINE_MIN_ITEMS) & (F.col("_var") > 0))
        .select("profile_date", (F.col("_cov") / F.col("_var")).alias("_slope"), "_mean_median", "_mean_length")
    )
    priors = F.broadcast(population.join(line, "profile_date", "left"))
    prior = F.coalesce(
        F.col("_mean_median") + F.col("_slope") * (F.col("log_length") - F.col("_mean_length")), F.col("_population")
    )
    needs = items.join(priors, "profile_date").select(
        "item_id", "profile_date",
        F.try_divide(F.col("_item_median") * F.col("_item_reads") + prior * k, F.col("_item_reads") + k).alias("need"),
    )
    users = (
        contributions.join(needs, ["item_id", "profile_date"], "left")
        .groupBy("user_id", "profile_date")
        .agg(
            F.percentile_approx(F.col("log_dwell") - F.col("need"), 0.5).alias("_user_median"),
            F.count(F.col("log_dwell")).alias("_user_reads"),
            F.percentile_approx("gap_ms", 0.75).alias("usual_gap_ms"),
        )
        .select(
            "user_id", "profile_date", "usual_gap_ms",
            F.coalesce(F.try_divide(F.col("_user_median") * F.col("_user_reads"), F.col("_user_reads") + k), F.lit(0.0)).alias("speed"),
        )
    )
    clicked = clicks.where(F.col("event_date").between(F.lit(first), F.lit(last))).select(
        "user_id", "item_id", F.col("event_date").alias("profile_date")
    ).distinct()
    return (
        clicked.join(needs, ["item_id", "profile_date"], "left")
        .join(users, ["user_id", "profile_date"], "left")
        .select("user_id", "item_id", F.col("profile_date").alias("event_date"), "need", "speed", "usual_gap_ms")
    )


def short_dwell(judged: DataFrame, rules: CleanSettings) -> DataFrame:
    """`judged` clicks (with their profiles) plus `_short`: the read falls in the
    lowest short_dwell_tail of the day's residuals log_dwell - need - speed."""
    residual = F.col("log_dwell") - F.col("need") - F.col("speed")
    with_residual = judged.withColumn("_residual", residual)
    z = statistics.NormalDist().inv_cdf(1.0 - rules.short_dwell_tail)
    q = binned_quantiles(with_residual, "event_date", ["_residual"], [0.25, 0.5, 0.75])
    cut = q.select(
        "event_date",
        (F.col(quantile_column("_residual", 0.5))
         - z * (F.col(quantile_column("_residual", 0.75)) - F.col(quantile_column("_residual", 0.25))) / _IQR_SIGMAS).alias("_cut"),
    )
    return with_residual.join(F.broadcast(cut), "event_date", "left").withColumn(
        "_short", F.coalesce(F.col("_residual") < F.col("_cut"), F.lit(False))
    )


def burst_clicks(clicks: DataFrame, rules: CleanSettings) -> DataFrame:
    """`clicks` plus `_burst`: the click is in a run of at least burst_min_clicks
    clicks, each within min(burst_max_gap_s, burst_rhythm_fraction * the user's
    usual gap) of the one before."""
    limit_ms = F.least(
        F.lit(rules.burst_max_gap_s * 1000.0), F.col("usual_gap_ms") * rules.burst_rhythm_fraction
    )
    by_time = Window.partitionBy("user_id").orderBy("ts", "event_id")
    starts_run = F.coalesce(F.col("gap_ms") > limit_ms, F.lit(True))
    runs = clicks.withColumn(
        "_run", F.sum(starts_run.cast("int")).over(by_time.rowsBetween(Window.unboundedPreceding, 0))
    )
    size = F.count("*").over(Window.partitionBy("user_id", "_run"))
    return runs.withColumn("_burst", size >= rules.burst_min_clicks).drop("_run")


def bot_user_days(
    events: DataFrame, clicks: DataFrame, first: dt.date, last: dt.date, rules: CleanSettings
) -> DataFrame:
    """(user_id, event_date, _bot) for the user-days of [first, last] with clicks.

    Four features, each oriented so that larger is more machine-like: of how
    much a user-day clicks, log clicks and log distinct hours with clicks; of
    how it clicks (its manner), log-odds of the (shrunk) click-through and
    minus the log coefficient of variation of in-session gaps. Each becomes a
    robust z-score against the same day's user-days (median and
    interquartile range). A user-day is a bot when the sum of its squared
    positive z-scores exceeds what independent normal features reach with
    probability bot_alpha, and its manner alone is unusual at
    bot_manner_alpha: a heavy reader, who comes back many times a day and
    clicks the way people do, is an outlier of the amount only. (The
    proxy's returns showed them flagged; they read like people.)
    """
    in_window = F.col("event_date").between(F.lit(first), F.lit(last))
    impressions = (
        events.where(in_window & (F.col("event_type") == EventType.IMPRESSION.value))
        .groupBy("user_id", "event_date")
        .agg(F.count("*").alias("_impressions"))
    )
    per_day = (
        clicks.where(in_window)
        .groupBy("user_id", "event_date")
        .agg(
            F.count("*").alias("_clicks"),
            F.count("gap_ms").alias("_gaps"),
            F.try_divide(F.stddev_samp("gap_ms"), F.mean("gap_ms")).alias("_gap_cv"),
            F.size(F.collect_set(F.hour(F.timestamp_millis("ts")))).alias("_hours"),
        )
        .join(impressions, ["user_id", "event_date"], "left")
    )
    day_ctr = per_day.groupBy("event_date").agg(
        F.try_divide(F.sum("_clicks"), F.sum("_impressions")).alias("_day_ctr")
    )
    k = float(rules.ctr_prior_impressions)
    shrunk_ctr = F.try_divide(F.col("_clicks") + k * F.col("_day_ctr"), F.coalesce(F.col("_impressions"), F.lit(0)) + k)
    features = per_day.join(F.broadcast(day_ctr), "event_date").select(
        "user_id", "event_date",
        F.log("_clicks").alias("volume"),
        F.when(F.col("_impressions") > 0, F.log(shrunk_ctr / (1 - F.least(shrunk_ctr, F.lit(1 - 1e-6))))).alias("click_through"),
        # A perfectly steady rhythm (CV 0) counts as a CV of 1%.
        F.when(F.col("_gaps") >= rules.bot_min_gaps, -F.log(F.greatest("_gap_cv", F.lit(0.01)))).alias("regularity"),
        F.log("_hours").alias("hours"),
    )
    z = robust_z_scores(features, "event_date", (*_BOT_AMOUNT, *_BOT_MANNER))
    bot = _outlying((*_BOT_AMOUNT, *_BOT_MANNER), rules.bot_alpha) & _outlying(_BOT_MANNER, rules.bot_manner_alpha)
    return z.select("user_id", "event_date", bot.alias("_bot"))


def _outlying(features: tuple[str, ...], alpha: float) -> Column:
    """True where the sum of the squared positive z-scores of `features` (those
    not null) exceeds what as many independent normal features reach with
    probability `alpha`; false where none is known."""
    positive = [F.greatest(F.col(f), F.lit(0.0)) for f in features]
    score = sum((F.coalesce(p * p, F.lit(0.0)) for p in positive), F.lit(0.0))
    judged = F.size(F.array_compact(F.array(*[F.col(f) for f in features])))
    cuts = F.array(*[F.lit(one_sided_chi2_cut(p, alpha)) for p in range(1, len(features) + 1)])
    return (judged > 0) & (score > F.element_at(cuts, F.greatest(judged, F.lit(1))))


def robust_z_scores(rows: DataFrame, group: str, columns: tuple[str, ...]) -> DataFrame:
    """`rows` with each of `columns` replaced by its robust z-score within `group`:
    (x - median) / (IQR / 1.349), the normal fit that a minority of outliers does
    not move; null where the group's IQR is 0 or x is null."""
    scored = rows.join(F.broadcast(binned_quantiles(rows, group, columns, [0.25, 0.5, 0.75])), group)

    def z(c: str) -> Column:
        sigma = (F.col(quantile_column(c, 0.75)) - F.col(quantile_column(c, 0.25))) / _IQR_SIGMAS
        return F.when(sigma > 0, (F.col(c) - F.col(quantile_column(c, 0.5))) / sigma)

    return scored.select(*[c for c in rows.columns if c not in columns], *[z(c).alias(c) for c in columns])


def one_sided_chi2_cut(features: int, alpha: float) -> float:
    """c with P(sum of max(z_i, 0)^2 > c) = alpha for `features` independent
    standard normal z_i: a mixture of chi-square laws (each z_i is positive with
    probability 1/2), solved by bisection."""

    def tail(c: float) -> float:
        return sum(math.comb(features, j) / 2**features * chi2.sf(c, j) for j in range(1, features + 1))

    low, high = 0.0, 1000.0
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if tail(middle) > alpha else (low, middle)
    return high
