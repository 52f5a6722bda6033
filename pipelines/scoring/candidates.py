"""The (user, item) pairs to score for a day, with the features a model reads.

The candidates of day D come only from what night D - 1 published: the
sequences and item statistics as of D - 1 (read as published, see
pipelines.lakehouse.publications), never from D's own events, so the same
candidates come out whenever the job runs. Three sources, a pair found by
several counting for the first:
- recent: the user's newest distinct items;
- co_visitation: items that other users' sequences hold within a few
  behaviors of the user's recent items, by how many users did so;
- category_popular: the most acted items of the user's top categories.
Their features are those of a training example of D at the configured
scoring time: sequences, statistics and BSE bucket sums as of D - 1, the
slot position unknown.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.config import ExampleSettings, ScoringSettings

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
RECENT, CO_VISITATION, CATEGORY_POPULAR = "recent", "co_visitation", "category_popular"
# In priority order: a pair that several sources find is the first one's.
CANDIDATE_SOURCES = (RECENT, CO_VISITATION, CATEGORY_POPULAR)


def scoring_instant_ms(day: dt.date, rules: ScoringSettings) -> int:
    """The instant of `day` whose time gaps the candidates' features take (ms since the epoch, UTC)."""
    return (dt.datetime.combine(day, rules.score_time, tzinfo=dt.UTC) - _EPOCH) // dt.timedelta(milliseconds=1)


def newest_behaviors(sequences: DataFrame, n: int) -> DataFrame:
    """(user_id, item_id, category_id, age): the newest `n` behaviors of each
    sequence, age 0 the newest."""
    tail = F.arrays_zip(_newest(F.col("item_ids"), n).alias("item_id"), _newest(F.col("category_ids"), n).alias("category_id"))
    exploded = sequences.select("user_id", F.posexplode(F.reverse(tail)).alias("age", "_b"))
    return exploded.select("user_id", "_b.item_id", "_b.category_id", "age")


def recent_items(behaviors: DataFrame, rules: ScoringSettings) -> DataFrame:
    """(user_id, item_id, category_id, rank): the user's newest distinct items, rank 1 the newest."""
    distinct = behaviors.groupBy("user_id", "item_id").agg(F.min("age").alias("age"), F.min("category_id").alias("category_id"))
    ranked = distinct.withColumn("rank", F.row_number().over(Window.partitionBy("user_id").orderBy("age", "item_id")))
    return ranked.where(F.col("rank") <= rules.recent_items).drop("age")


def co_visited_items(behaviors: DataFrame, recent: DataFrame, rules: ScoringSettings) -> DataFrame:
    """(user_id, item_id, category_id): per user, the items most co-visited with
    the user's recent items. Two items are co-visited when one user's sequence
    holds them at most covisit_gap behaviors apart; their strength is the
    number of users whose sequence does."""
    later = behaviors.select("user_id", F.col("item_id").alias("other"), F.col("age").alias("other_age"))
    later_ages = F.transform(F.sequence(F.lit(1), F.lit(rules.covisit_gap)), lambda gap: F.col("age") + gap)
    gaps = behaviors.select("user_id", "item_id", F.explode(later_ages).alias("other_age"))
    near = gaps.join(later, ["user_id", "other_age"]).where(F.col("item_id") != F.col("other"))
    # Both directions: an item's neighbours are those before and after it.
    pairs = near.select("user_id", "item_id", "other").unionByName(
        near.select("user_id", F.col("other").alias("item_id"), F.col("item_id").alias("other"))
    )
    categories = behaviors.groupBy(F.col("item_id").alias("other")).agg(F.min("category_id").alias("category_id"))
    strength = pairs.groupBy("item_id", "other").agg(F.countDistinct("user_id").alias("users"))
    strongest = strength.withColumn(
        "_n", F.row_number().over(Window.partitionBy("item_id").orderBy(F.desc("users"), "other"))
    ).where(F.col("_n") <= rules.covisit_per_item)
    per_user = (
        recent.select("user_id", "item_id").join(strongest, "item_id")
        .groupBy("user_id", "other").agg(F.sum("users").alias("users"))
        .withColumn("_n", F.row_number().over(Window.partitionBy("user_id").orderBy(F.desc("users"), "other")))
        .where(F.col("_n") <= rules.covisit_per_user)
    )
    return per_user.join(categories, "other").select("user_id", F.col("other").alias("item_id"), "category_id")


def category_popular_items(sequences: DataFrame, item_stats: DataFrame, rules: ScoringSettings, long_len: int) -> DataFrame:
    """(user_id, item_id, category_id): the most acted items (item_stats) of
    each of the user's top categories, by behaviors in the long side."""
    by_count = Window.partitionBy("user_id").orderBy(F.desc("_behaviors"), "category_id")
    top_categories = (
        sequences.select("user_id", F.explode(_newest(F.col("category_ids"), long_len)).alias("category_id"))
        .groupBy("user_id", "category_id").agg(F.count("*").alias("_behaviors"))
        .withColumn("_n", F.row_number().over(by_count))
        .where(F.col("_n") <= rules.top_categories)
    )
    by_actions = Window.partitionBy("category_id").orderBy(F.desc("item_actions"), "item_id")
    popular = (
        item_stats.where(F.col("item_actions") > 0)
        .withColumn("_n", F.row_number().over(by_actions))
        .where(F.col("_n") <= rules.popular_per_category)
        .select("item_id", "category_id")
    )
    return top_categories.join(popular, "category_id").select("user_id", "item_id", "category_id")


def candidate_pairs(
    sequences: DataFrame, item_stats: DataFrame, day: dt.date, rules: ScoringSettings, long_len: int
) -> DataFrame:
    """Distinct (user_id, item_id) to score on `day` with impression_id
    "candidates-<day>", category_id, candidate_source, a null position,
    event_date = day and impression_ts = the scoring instant of the day.
    `sequences` and `item_stats` are as of day - 1."""
    behaviors = newest_behaviors(sequences, rules.covisit_history)
    recent = recent_items(behaviors, rules)
    found = [
        (RECENT, recent.drop("rank")),
        (CO_VISITATION, co_visited_items(behaviors, recent, rules)),
        (CATEGORY_POPULAR, category_popular_items(sequences, item_stats, rules, long_len)),
    ]
    union = None
    for priority, (source, pairs) in enumerate(found):
        tagged = pairs.select("user_id", "item_id", "category_id", F.lit(source).alias("candidate_source"),
                              F.lit(priority).alias("_priority"))
        union = tagged if union is None else union.unionByName(tagged)
    first_source = Window.partitionBy("user_id", "item_id").orderBy("_priority")
    return (
        union.withColumn("_first", F.row_number().over(first_source))
        .where(F.col("_first") == 1)
        .select(
            "user_id", F.lit(f"candidates-{day}").alias("impression_id"), "item_id", "category_id", "candidate_source",
            F.lit(None).cast("int").alias("position"),
            F.lit(scoring_instant_ms(day, rules)).cast("long").alias("impression_ts"),
            F.lit(day).alias("event_date"),
        )
    )


def _newest(values: Column, n: int) -> Column:
    return F.slice(values, F.greatest(F.size(values) - n + 1, F.lit(1)), n)


def with_short_side_inputs(rows: DataFrame, rules: ExampleSettings) -> DataFrame:
    """`rows` plus what a BSE-mode model reads besides the bucket sums, so that
    scoring never reads the long sequence: its short tail (`short_item_ids`,
    `short_category_ids`, `short_timestamps`), its length capped at
    examples.train_len (`long_length`) and the share of it in the row's
    category (`long_category_share`), as the batch builder derives them from
    the long sequence."""
    def tail(column: str) -> Column:
        return _newest(F.col(column), rules.short_len)

    length = F.least(F.size("long_category_ids"), F.lit(rules.train_len))
    recent = _newest(F.col("long_category_ids"), rules.train_len)
    same = F.aggregate(recent, F.lit(0), lambda n, c: n + F.when(c == F.col("category_id"), 1).otherwise(0))
    return rows.withColumns({
        "short_item_ids": tail("long_item_ids"), "short_category_ids": tail("long_category_ids"),
        "short_timestamps": tail("long_timestamps"),
        "long_length": length.cast("int"),
        "long_category_share": (same / F.greatest(length, F.lit(1))).cast("double"),
    })
