"""Impressions of a day, labelled, with features as of the day before.

Point-in-time by construction: every feature comes from events of earlier
event dates (the sequence snapshot and statistics as of D-1), so no feature
can contain anything that happened at or after the impression.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.schema import EventType
from pipelines.config import ExampleSettings

_IMPRESSION_KEY = ["user_id", "item_id", "impression_id"]


def labelled_impressions(silver_day: DataFrame, rules: ExampleSettings) -> DataFrame:
    """Impressions with `label`: 1 for a genuine click on them, 0 without a click.

    An impression clicked only as noise is dropped, or labelled 0 when
    examples.noisy_clicks = "negative".
    """
    impressions = silver_day.where(F.col("event_type") == EventType.IMPRESSION.value).select(
        *_IMPRESSION_KEY, "position", "category_id", "content_length",
        F.col("ts").alias("impression_ts"), "event_date",
    )
    clicks = (
        silver_day.where(F.col("event_type") == EventType.CLICK.value)
        .groupBy(*_IMPRESSION_KEY)
        .agg(F.max(F.col("noise_reason").isNull().cast("int")).alias("_genuine"))
    )
    joined = impressions.join(clicks, _IMPRESSION_KEY, "left")
    noisy_only = F.col("_genuine") == 0
    if rules.noisy_clicks == "exclude":
        joined = joined.where(~noisy_only | F.col("_genuine").isNull())
    return joined.withColumn("label", F.coalesce(F.col("_genuine"), F.lit(0))).drop("_genuine")


def user_statistics(history: DataFrame) -> DataFrame:
    """Per user over `history`: impressions, genuine clicks, CTR and genuine dwell."""
    return _statistics(history, "user")


def item_statistics(history: DataFrame) -> DataFrame:
    """Per item over `history`: impressions, genuine clicks, CTR and genuine dwell."""
    return _statistics(history, "item")


def _statistics(history: DataFrame, who: str) -> DataFrame:
    genuine_click = (F.col("event_type") == EventType.CLICK.value) & F.col("noise_reason").isNull()
    impressions = F.sum((F.col("event_type") == EventType.IMPRESSION.value).cast("long"))
    clicks = F.sum(genuine_click.cast("long"))
    dwell = F.when(genuine_click, F.col("dwell_ms"))
    return history.groupBy(f"{who}_id").agg(
        impressions.alias(f"{who}_impressions"),
        clicks.alias(f"{who}_clicks"),
        F.mean(dwell).alias(f"{who}_dwell_mean_ms"),
        F.percentile_approx(dwell, 0.5).alias(f"{who}_dwell_median_ms"),
    ).withColumn(
        f"{who}_ctr", F.when(F.col(f"{who}_impressions") > 0, F.col(f"{who}_clicks") / F.col(f"{who}_impressions"))
    )


def training_examples(
    labelled: DataFrame, sequences_before: DataFrame, users: DataFrame, items: DataFrame, rules: ExampleSettings
) -> DataFrame:
    """Labelled impressions with the long and short sequences and the statistics
    as of the day before (users and items without history get empty / null)."""
    sequences = sequences_before.select(
        "user_id",
        _last(F.col("item_ids"), rules.train_len).alias("long_item_ids"),
        _last(F.col("category_ids"), rules.train_len).alias("long_category_ids"),
        _last(F.col("item_ids"), rules.short_len).alias("short_item_ids"),
        _last(F.col("category_ids"), rules.short_len).alias("short_category_ids"),
        F.col("as_of_date").alias("features_as_of"),
    )
    examples = labelled.join(sequences, "user_id", "left").join(users, "user_id", "left").join(items, "item_id", "left")
    empty_longs = F.array().cast("array<bigint>")
    empty_ints = F.array().cast("array<int>")
    return examples.withColumns({
        "long_item_ids": F.coalesce("long_item_ids", empty_longs),
        "long_category_ids": F.coalesce("long_category_ids", empty_ints),
        "short_item_ids": F.coalesce("short_item_ids", empty_longs),
        "short_category_ids": F.coalesce("short_category_ids", empty_ints),
    })


def _last(values: Column, n: int) -> Column:
    size = F.size(values)
    return F.when(size > n, F.slice(values, size - n + 1, F.lit(n))).otherwise(values)
