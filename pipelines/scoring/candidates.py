"""The (user, item) pairs to score for a day, with the features a model reads.

Candidates of day D: the pairs shown on D (its impressions), plus for every
user with a sequence as of D - 1 the most-acted items (item statistics as of
D - 1) of the user's top categories. Their features are those of training
examples of D: sequences, statistics and BSE bucket sums as of D - 1, so a
score uses exactly what serving would have read before the day began.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from pipelines.clickstream.schema import EventType
from pipelines.config import ExampleSettings, ScoringSettings

IMPRESSION, POPULAR = "impression", "popular"


def candidate_pairs(
    silver_day: DataFrame, sequences: DataFrame, item_stats: DataFrame, day: dt.date, rules: ScoringSettings
) -> DataFrame:
    """Distinct (user_id, item_id) of `day` with impression_id "candidates-<day>", category_id, candidate_source
    (impression wins over popular), event_date = day and impression_ts = the
    day's first millisecond. `sequences` and `item_stats` are as of day - 1."""
    shown = silver_day.where(F.col("event_type") == EventType.IMPRESSION.value).select(
        "user_id", "item_id", "category_id", F.lit(IMPRESSION).alias("candidate_source"), F.lit(0).alias("_rank")
    )
    by_count = Window.partitionBy("user_id").orderBy(F.desc("_behaviors"), "category_id")
    top_categories = (
        sequences.select("user_id", F.explode("category_ids").alias("category_id"))
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
    suggested = top_categories.join(popular, "category_id").select(
        "user_id", "item_id", "category_id", F.lit(POPULAR).alias("candidate_source"), F.lit(1).alias("_rank")
    )
    first_source = Window.partitionBy("user_id", "item_id").orderBy("_rank", F.col("category_id").asc_nulls_last())
    day_start_ms = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp() * 1000)
    return (
        shown.unionByName(suggested)
        .withColumn("_first", F.row_number().over(first_source))
        .where(F.col("_first") == 1)
        .select(
            "user_id", F.lit(f"candidates-{day}").alias("impression_id"), "item_id", "category_id", "candidate_source",
            F.lit(None).cast("int").alias("position"),
            F.lit(day_start_ms).cast("long").alias("impression_ts"),
            F.lit(day).alias("event_date"),
        )
    )


def with_short_side_inputs(rows: DataFrame, rules: ExampleSettings) -> DataFrame:
    """`rows` plus what a BSE-mode model reads besides the bucket sums, so that
    scoring never reads the long sequence: its short tail (`short_item_ids`,
    `short_category_ids`, `short_timestamps`), its length capped at
    examples.train_len (`long_length`) and the share of it in the row's
    category (`long_category_share`), as the batch builder derives them from
    the long sequence."""
    def tail(column: str) -> F.Column:
        return F.slice(column, F.greatest(F.size(column) - rules.short_len + 1, F.lit(1)), rules.short_len)

    length = F.least(F.size("long_category_ids"), F.lit(rules.train_len))
    recent = F.slice("long_category_ids", F.greatest(F.size("long_category_ids") - rules.train_len + 1, F.lit(1)), rules.train_len)
    same = F.aggregate(recent, F.lit(0), lambda n, c: n + F.when(c == F.col("category_id"), 1).otherwise(0))
    return rows.withColumns({
        "short_item_ids": tail("long_item_ids"), "short_category_ids": tail("long_category_ids"),
        "short_timestamps": tail("long_timestamps"),
        "long_length": length.cast("int"),
        "long_category_share": (same / F.greatest(length, F.lit(1))).cast("double"),
    })
