"""seqlake examples: gold/training_examples of the dates a night (or a range) rewrites.

    seqlake examples --date D                one night: the examples of D - lookback .. D
    seqlake examples --start D1 --end D2     a range of nights in one pass

Labels from silver (rewritten with clean's look-back window, so late clicks
update them); features as of each date's day before: gold/user_sequences,
gold/user_stats and gold/item_stats. The label mode of each source is
configured (examples.label_modes): impressions, or implicit feedback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.cli import add_night_arguments, nights, run_command
from pipelines.bse.signatures import candidate_bucket_sums
from pipelines.config import Settings
from pipelines.ctr.registry import current_embedding_version
from pipelines.examples.training_examples import (
    IMPLICIT,
    IMPRESSIONS,
    example_summary,
    feature_dates,
    implicit_examples,
    label_mode_of,
    labelled_impressions,
    negative_pool,
    training_examples,
    without_bot_days,
)
from pipelines.lakehouse.dates import days_between, rewritten_dates
from pipelines.lakehouse.ledger import Run, now_utc, record_run
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import (
    GOLD_ITEM_SIGNATURES,
    GOLD_ITEM_STATS,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SILVER_EVENTS,
)
from pipelines.lakehouse.writes import (
    read_date_partitions,
    read_table,
    table_exists,
)
from pipelines.quality.gate import audit_and_publish_dates, published_rates
from pipelines.quality.suites import LABEL_RATE, training_examples_suite


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return build_examples(spark_session(settings.spark, "seqlake-examples"), settings, *nights(args))


def build_examples(spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None) -> dict[str, object]:
    started, began = time.perf_counter(), now_utc()
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.examples
    first, last = rewritten_dates(start, end, settings.clean.lookback_days)

    def features(table):
        return read_date_partitions(spark, lakehouse, table, *feature_dates(first, last))

    silver = read_date_partitions(spark, lakehouse, SILVER_EVENTS, first, last)
    mode = label_mode_of(F.col("source"), rules)
    impressions = without_bot_days(labelled_impressions(silver.where(mode == IMPRESSIONS), rules), silver)
    implicit = implicit_examples(silver.where(mode == IMPLICIT), negative_pool(features(GOLD_ITEM_STATS), rules), rules)
    labelled = impressions.unionByName(implicit).withColumn("label_mode", label_mode_of(F.col("source"), rules))
    examples = training_examples(labelled, features(GOLD_USER_SEQUENCES), features(GOLD_USER_STATS), features(GOLD_ITEM_STATS), rules)
    examples = with_bucket_sums(spark, settings, examples, features, settings.examples.bse_long_side)
    labels = published_rates(spark, lakehouse, GOLD_TRAINING_EXAMPLES, LABEL_RATE, first, settings.quality.history_days)
    audit_and_publish_dates(spark, examples, lakehouse, GOLD_TRAINING_EXAMPLES, first, last,
                            training_examples_suite(rules.train_len, rules.short_len, labels, newest=end),
                            maxRecordsPerFile=rules.max_records_per_file)
    figures = {
        "date": end.isoformat() if start == end else f"{start}..{end}",
        "rewritten": f"{first}..{last}",
        "features_as_of": feature_dates(end, end)[0].isoformat(),
        **example_summary(
            read_date_partitions(spark, lakehouse, GOLD_TRAINING_EXAMPLES, end), silver.where(F.col("event_date") == F.lit(end)), rules
        ),
    }
    record_run(lakehouse, Run("examples", days_between(first, last), began, tables=(GOLD_TRAINING_EXAMPLES,)), figures)
    return {**figures, "seconds": round(time.perf_counter() - started, 2)}


def with_bucket_sums(
    spark: SparkSession, settings: Settings, examples: DataFrame, features, enabled: bool, version: str | None = None
) -> DataFrame:
    """The rows with the user's BSE bucket sums for the row's item as of the day
    before (`long_bse`, SDIM's long side precomputed) under embedding `version`
    (default the current one); null when not `enabled` or signatures have not run."""
    tables = (GOLD_USER_BSE, GOLD_ITEM_SIGNATURES)
    if not enabled or not all(table_exists(spark, settings.lakehouse, t) for t in tables):
        return examples.withColumn("long_bse", F.lit(None).cast("array<float>")).withColumn("bse_version", F.lit(None).cast("string"))
    version = version or current_embedding_version(settings)
    user_bse = features(GOLD_USER_BSE).where(F.col("version") == version)
    signatures = read_table(spark, settings.lakehouse, GOLD_ITEM_SIGNATURES).where(F.col("version") == version)
    gathered = candidate_bucket_sums(examples, user_bse, signatures, settings.bse)
    return gathered.withColumn("bse_version", F.when(F.col("long_bse").isNotNull(), F.lit(version)))


if __name__ == "__main__":
    run_command("examples")
