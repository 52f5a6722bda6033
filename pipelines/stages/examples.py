"""Examples: gold/training_examples of the dates a night (or a range) rewrites.

Labels from silver (rewritten with clean's look-back window, so late clicks
update them); features as of each date's day before as that day's night
published them (gold/user_sequences, gold/user_stats, gold/item_stats and,
with examples.bse_long_side, gold/user_bse): what serving read, not a later
restatement. The label mode of each source is configured
(examples.label_modes): impressions, or implicit feedback.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.bse.gather import published_bucket_sums, without_bucket_sums
from pipelines.config import Settings
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
from pipelines.lakehouse.continuity import require_unbroken_past
from pipelines.lakehouse.dates import days_between, rewritten_dates
from pipelines.lakehouse.ledger import Run, now_utc, recorded_run
from pipelines.lakehouse.publications import published_dates
from pipelines.lakehouse.tables import (
    GOLD_ITEM_STATS,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SILVER_EVENTS,
)
from pipelines.lakehouse.writes import read_date_partitions, read_published
from pipelines.quality.gate import audit_and_publish_dates, published_rates, published_volumes
from pipelines.quality.suites import LABEL_RATE, training_examples_suite


def build_examples(spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None) -> dict[str, object]:
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.examples
    first, last = rewritten_dates(start, end, settings.clean.lookback_days)
    require_unbroken_past(lakehouse, "examples", (start, end), first, inputs=("clean",))
    run = Run("examples", days_between(first, last), now_utc(), tables=(GOLD_TRAINING_EXAMPLES,), nights=days_between(start, end))
    as_of = days_between(*feature_dates(first, last))

    def features(table):
        return read_published(spark, lakehouse, table, published_dates(lakehouse, table, as_of))

    with recorded_run(lakehouse, run) as figures:
        silver = read_date_partitions(spark, lakehouse, SILVER_EVENTS, first, last)
        humans = without_bot_days(silver)
        mode = label_mode_of(F.col("source"), rules)
        impressions = labelled_impressions(humans.where(mode == IMPRESSIONS), rules)
        implicit_rows = humans.where(mode == IMPLICIT)
        implicit = implicit_examples(implicit_rows, negative_pool(implicit_rows, rules), rules)
        labelled = impressions.unionByName(implicit).withColumn("label_mode", label_mode_of(F.col("source"), rules))
        examples = training_examples(labelled, features(GOLD_USER_SEQUENCES), features(GOLD_USER_STATS), features(GOLD_ITEM_STATS), rules)
        sums: list = []
        if rules.bse_long_side:
            examples, sums = published_bucket_sums(spark, settings, examples, as_of)
        else:
            examples = without_bucket_sums(examples)
        history = settings.quality.history_days
        labels = published_rates(spark, lakehouse, GOLD_TRAINING_EXAMPLES, LABEL_RATE, first, history)
        volumes = published_volumes(spark, lakehouse, GOLD_TRAINING_EXAMPLES, first, history)
        # A date whose silver holds no human event has no examples by right; any other date emptied is a broken batch.
        with_events = {r[0] for r in humans.select("event_date").distinct().collect()}
        audit_and_publish_dates(spark, examples, lakehouse, GOLD_TRAINING_EXAMPLES, first, last,
                                training_examples_suite(rules.train_len, rules.short_len, labels, newest=end, volume_history=volumes),
                                empty_by_right=set(days_between(first, last)) - with_events,
                                maxRecordsPerFile=rules.max_records_per_file, userMetadata=run.commit_tag)
        figures["features_as_of"] = feature_dates(end, end)[0].isoformat()
        figures["bse_versions"] = {p.day.isoformat(): p.embedding_version for p in sums}
        figures.update(example_summary(
            read_date_partitions(spark, lakehouse, GOLD_TRAINING_EXAMPLES, end), silver.where(F.col("event_date") == F.lit(end)), rules
        ))
    return figures
