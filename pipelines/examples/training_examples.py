"""Training examples of a range of dates, labelled, with features as of the day before.

Two label modes, chosen per source by configuration (examples.label_modes):
- impressions: one example per shown slot (user, impression, position, item),
  labelled 1 when that slot got a genuine click; slots clicked only as noise
  are dropped (or labelled 0 with examples.noisy_clicks = "negative"), and
  the impressions of user-days flagged as bots are left out;
- implicit: for sources that log behaviors but no impressions (the DIN and
  SDIM papers' Taobao setups), each genuine behavior is a positive and K
  negatives per positive are drawn, seeded, from the items acted on that same
  day (by how often, or uniformly) that the user did not act on: negatives
  and positives then come from one population of items, so that nothing
  about an item (its statistics being null, say) gives its label away.
In both modes the user-days that clean flagged as a bot's are left out.

Point in time: the features of an example of date D are the gold tables as of
D - 1 (sequences, user and item statistics) as night D - 1 published them
(pipelines.lakehouse.publications), built from event dates up to D - 1 only,
and the flags behind them depend on no later date (see
pipelines.clickstream.denoise). Labels follow silver, so the examples of a
date are rewritten with clean's look-back window: a late click updates its
slot's label.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.clickstream.clean import bot_days
from pipelines.clickstream.schema import EventType
from pipelines.config import ExampleSettings
from pipelines.sequences.behavior_sequences import genuine_behaviors

IMPRESSIONS, IMPLICIT = "impressions", "implicit"
LABEL_MODES = (IMPRESSIONS, IMPLICIT)
EXAMPLE_KEY = ["user_id", "impression_id", "position", "item_id"]
_BUCKETS = 4096
_UNIT = float(1 << 53)


def feature_dates(first: dt.date, last: dt.date) -> tuple[dt.date, dt.date]:
    """The as-of dates whose features the examples of [first, last] read: each
    example's day before, and nothing later."""
    day = dt.timedelta(days=1)
    return first - day, last - day


def label_mode_of(source: Column, rules: ExampleSettings) -> Column:
    """The label mode configured for each row's source."""
    mode: Column = F.lit(rules.default_label_mode)
    for name, configured in sorted(rules.label_modes.items()):
        mode = F.when(source == name, F.lit(configured)).otherwise(mode)
    return mode


def labelled_impressions(silver: DataFrame, rules: ExampleSettings) -> DataFrame:
    """One row per shown slot of the impression-mode sources' human user-days,
    with `label`; `silver` is the rows of the examples' dates."""
    impressions = silver.where(F.col("event_type") == EventType.IMPRESSION.value).select(
        *EXAMPLE_KEY, "category_id", "content_length", "source", F.col("ts").alias("impression_ts"), "event_date",
    )
    clicks = (
        silver.where(F.col("event_type") == EventType.CLICK.value)
        .groupBy(*EXAMPLE_KEY)
        .agg(F.max(F.col("noise_reason").isNull().cast("int")).alias("_genuine"))
        .withColumnRenamed("position", "_click_position")
    )
    slot = [impressions[c] == clicks[c] for c in ("user_id", "impression_id", "item_id")]
    slot.append(impressions["position"].eqNullSafe(clicks["_click_position"]))
    joined = impressions.join(clicks, slot, "left").select(impressions["*"], "_genuine")
    if rules.noisy_clicks == "exclude":
        joined = joined.where(F.coalesce(F.col("_genuine") != 0, F.lit(True)))
    return joined.withColumn("label", F.coalesce(F.col("_genuine"), F.lit(0))).drop("_genuine")


def without_bot_days(silver: DataFrame) -> DataFrame:
    """`silver` less the rows of the user-days whose clicks clean flagged as a bot's."""
    return silver.join(bot_days(silver), ["user_id", "event_date"], "left_anti")


def implicit_examples(silver: DataFrame, pool: DataFrame, rules: ExampleSettings) -> DataFrame:
    """Each genuine behavior of `silver` (implicit-mode sources) as a positive, and
    up to K sampled negatives each: items of `pool` (item_id, category_id,
    weight, event_date; see negative_pool) the user did not act on that day.
    Deterministic: draw j of a positive is a hash of (seed, event, j)."""
    k = rules.negatives_per_positive
    positives = genuine_behaviors(silver).select(
        "user_id", "item_id", "category_id", "event_id", "source", "event_date", F.col("ts").alias("impression_ts"),
    )
    draws = positives.select(
        "user_id", "event_id", "source", "event_date", "impression_ts",
        F.explode(F.sequence(F.lit(0), F.lit(2 * k + 8 - 1))).alias("_draw"),
    ).withColumn("_u", F.xxhash64(F.lit(rules.negative_seed), "event_id", "_draw").bitwiseAND(F.lit((1 << 53) - 1)) / _UNIT)
    drawn = draws.withColumn("_bucket", F.floor(F.col("_u") * _BUCKETS).cast("int")).join(
        sampling_intervals(pool), ["event_date", "_bucket"]
    ).where((F.col("_u") >= F.col("_low")) & (F.col("_u") < F.col("_high")))
    acted = silver.where(F.col("event_type") != EventType.IMPRESSION.value).select("user_id", "event_date", "item_id").distinct()
    first_k = Window.partitionBy("event_id").orderBy("_draw")
    kept = ["user_id", "item_id", "category_id", "event_id", "source", "event_date", "impression_ts"]
    negatives = (
        drawn.join(acted, ["user_id", "event_date", "item_id"], "left_anti")
        .groupBy(*kept)
        .agg(F.min("_draw").alias("_draw"))  # an item drawn twice counts once, at its first draw
        .withColumn("_rank", F.row_number().over(first_k))
        .where(F.col("_rank") <= k)
        .select(*kept, F.lit(0).alias("label"))
    )
    examples = positives.withColumn("label", F.lit(1)).unionByName(negatives)
    return examples.select(
        "user_id", F.concat(F.lit("implicit-"), F.col("event_id")).alias("impression_id"),
        F.lit(None).cast("int").alias("position"), "item_id", "category_id",
        F.lit(None).cast("int").alias("content_length"), "source", "impression_ts", "event_date", "label",
    )


def negative_pool(silver: DataFrame, rules: ExampleSettings) -> DataFrame:
    """The items of each date's genuine behaviors (item_id, category_id, weight,
    event_date): the population that date's positives come from, weighted by
    how often they were acted on ("popularity": negatives then follow the
    positives' item distribution) or equally ("uniform")."""
    acted = genuine_behaviors(silver).groupBy("event_date", "item_id").agg(
        F.count("*").alias("_behaviors"), F.min("category_id").alias("category_id")
    )
    weight = F.col("_behaviors").cast("double") if rules.negative_sampling == "popularity" else F.lit(1.0)
    return acted.select("item_id", "category_id", weight.alias("weight"), "event_date")


def sampling_intervals(pool: DataFrame) -> DataFrame:
    """Each pool item's share of [0, 1) per date, [_low, _high), listed under
    every one of _BUCKETS equal buckets it overlaps, for an equi-join on draws."""
    by_item = Window.partitionBy("event_date").orderBy("item_id")
    total = Window.partitionBy("event_date")
    cumulative = pool.select(
        "item_id", "category_id", "event_date",
        (F.sum("weight").over(by_item) / F.sum("weight").over(total)).alias("_high"),
        (F.col("weight") / F.sum("weight").over(total)).alias("_share"),
    ).withColumn("_low", F.col("_high") - F.col("_share"))
    first_bucket = F.floor(F.col("_low") * _BUCKETS).cast("int")
    last_bucket = F.least(F.floor(F.col("_high") * _BUCKETS).cast("int"), F.lit(_BUCKETS - 1))
    return cumulative.select(
        "item_id", "category_id", "event_date", "_low",
        # The last item's upper end is 1 (up to rounding): no draw may fall past it.
        F.when(F.col("_high") >= 1 - 1e-12, F.lit(1.0)).otherwise(F.col("_high")).alias("_high"),
        F.explode(F.sequence(first_bucket, last_bucket)).alias("_bucket"),
    )


def training_examples(
    labelled: DataFrame, sequences: DataFrame, user_stats: DataFrame, item_stats: DataFrame, rules: ExampleSettings
) -> DataFrame:
    """Labelled rows with the long and short sequences and the statistics as of
    the day before each row's date (users and items without history get empty
    sequences and null statistics)."""
    as_of = F.date_sub("event_date", 1).alias("features_as_of")
    features = sequences.select(
        "user_id",
        F.col("as_of_date").alias("features_as_of"),
        _last(F.col("item_ids"), rules.train_len).alias("long_item_ids"),
        _last(F.col("category_ids"), rules.train_len).alias("long_category_ids"),
        _last(F.col("timestamps"), rules.train_len).alias("long_timestamps"),
        _last(F.col("item_ids"), rules.short_len).alias("short_item_ids"),
        _last(F.col("category_ids"), rules.short_len).alias("short_category_ids"),
    )
    users = user_stats.withColumnRenamed("as_of_date", "features_as_of")
    items = item_stats.drop("category_id").withColumnRenamed("as_of_date", "features_as_of")
    examples = (
        labelled.select("*", as_of)
        .join(features, ["user_id", "features_as_of"], "left")
        .join(users, ["user_id", "features_as_of"], "left")
        .join(items, ["item_id", "features_as_of"], "left")
    )
    empty_longs, empty_ints = F.array().cast("array<bigint>"), F.array().cast("array<int>")
    return examples.withColumns({
        "long_item_ids": F.coalesce("long_item_ids", empty_longs),
        "long_category_ids": F.coalesce("long_category_ids", empty_ints),
        "long_timestamps": F.coalesce("long_timestamps", empty_longs),
        "short_item_ids": F.coalesce("short_item_ids", empty_longs),
        "short_category_ids": F.coalesce("short_category_ids", empty_ints),
    })


def _last(values: Column, n: int) -> Column:
    size = F.size(values)
    return F.when(size > n, F.slice(values, size - n + 1, F.lit(n))).otherwise(values)


def example_summary(examples: DataFrame, silver: DataFrame, rules: ExampleSettings) -> dict[str, object]:
    """Examples by label mode, label rate, history coverage of one date's
    examples, and the impressions left out because their user-day was a bot's."""
    stats = examples.agg(
        F.count("*").alias("examples"),
        F.mean("label").alias("label_rate"),
        F.mean((F.size("long_item_ids") > 0).cast("double")).alias("with_history"),
        F.mean(F.size("long_item_ids")).alias("mean_long_len"),
    ).first()
    impressions = silver.where(
        (F.col("event_type") == EventType.IMPRESSION.value) & (label_mode_of(F.col("source"), rules) == IMPRESSIONS)
    )
    return {
        "examples": stats["examples"],
        "examples_by_mode": {r["label_mode"]: r["count"] for r in examples.groupBy("label_mode").count().orderBy("label_mode").collect()},
        "excluded_bot_impressions": impressions.join(bot_days(silver), ["user_id", "event_date"], "left_semi").count(),
        "label_rate": round(stats["label_rate"] or 0.0, 4),
        "with_history": round(stats["with_history"] or 0.0, 4),
        "mean_long_len": round(stats["mean_long_len"] or 0.0, 1),
    }
