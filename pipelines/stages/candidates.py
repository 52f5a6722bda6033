"""Candidates: gold/candidates of a day, the pairs the score stage scores.

Built only from what the night of D - 1 published (the sequences and item
statistics as of D - 1, read as published): the user's recent items, the
items co-visited with them and the most acted items of the user's top
categories (pipelines.scoring.candidates), with the features of a training
example of D at scoring.score_time - sequences, statistics and the BSE
bucket sums under the embeddings the champion scores from (or the version
given). The same rows whenever the stage runs; rerunning a date replaces
that date.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.bse.gather import published_bucket_sums
from pipelines.config import Settings
from pipelines.ctr.registry import current_embedding_version
from pipelines.examples.training_examples import training_examples
from pipelines.lakehouse.ledger import Run, now_utc, recorded_run
from pipelines.lakehouse.publications import published_dates
from pipelines.lakehouse.tables import (
    GOLD_CANDIDATES,
    GOLD_ITEM_STATS,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
)
from pipelines.lakehouse.writes import read_date_partitions, read_published, replace_date_partitions
from pipelines.scoring.candidates import candidate_pairs, with_short_side_inputs


def build_candidates(spark: SparkSession, settings: Settings, day: dt.date, version: str | None = None) -> dict[str, object]:
    lakehouse, before = settings.lakehouse, day - dt.timedelta(days=1)
    version = version or current_embedding_version(settings)

    def features(table):
        return read_published(spark, lakehouse, table, published_dates(lakehouse, table, [before]))

    run = Run("candidates", [day], now_utc(), tables=(GOLD_CANDIDATES,), embedding_version=version)
    with recorded_run(lakehouse, run) as figures:
        sequences, item_stats = features(GOLD_USER_SEQUENCES), features(GOLD_ITEM_STATS)
        pairs = candidate_pairs(sequences, item_stats, day, settings.scoring, settings.examples.train_len)
        rows = with_short_side_inputs(training_examples(pairs, sequences, features(GOLD_USER_STATS), item_stats, settings.examples),
                                      settings.examples)
        rows, _ = published_bucket_sums(spark, settings, rows, [before], embedding_version=version)
        replace_date_partitions(rows.withColumn("score_date", F.col("event_date")).drop("event_date"), lakehouse, GOLD_CANDIDATES,
                                day, mergeSchema="true", userMetadata=run.commit_tag)
        written = read_date_partitions(spark, lakehouse, GOLD_CANDIDATES, day)
        counts = {r["candidate_source"]: r["count"] for r in written.groupBy("candidate_source").count().collect()}
        totals = written.agg(F.countDistinct("user_id").alias("users"), F.count("long_bse").alias("with_bse")).first()
        candidates = sum(counts.values())
        figures.update({
            "features_as_of": before.isoformat(), "candidates": candidates,
            "by_source": dict(sorted(counts.items())), "users": totals["users"],
            "embedding_version": version, "with_bse": totals["with_bse"],
            # No bucket sums published as of the day before under that version (e.g. a
            # promotion since the signatures ran): scoring falls back to end to end.
            "without_bse": candidates - totals["with_bse"],
        })
    return figures
