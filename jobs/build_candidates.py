"""seqlake candidates: gold/candidates of a day, the pairs `seqlake score` scores.

    seqlake candidates --date D

The day's impressions plus the most-acted items of each user's top categories
(scoring.top_categories x scoring.popular_per_category), with the features of
the day before: sequences, statistics and the BSE bucket sums under the
current embedding version. Rerunning a date replaces that date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.build_examples import with_bucket_sums
from jobs.cli import iso_date, run_command
from pipelines.config import Settings
from pipelines.examples.training_examples import training_examples
from pipelines.lakehouse.ledger import Run, now_utc, record_run
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import (
    GOLD_CANDIDATES,
    GOLD_ITEM_STATS,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SILVER_EVENTS,
)
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions
from pipelines.scoring.candidates import candidate_pairs, with_short_side_inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=iso_date, required=True, help="the day whose candidates to build")
    parser.add_argument("--embeddings", help="embedding version of the bucket sums (default: the champion's, else the bootstrap)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return build_candidates(spark_session(settings.spark, "seqlake-candidates"), settings, args.date, args.embeddings)


def build_candidates(spark: SparkSession, settings: Settings, day: dt.date, version: str | None = None) -> dict[str, object]:
    started, began = time.perf_counter(), now_utc()
    lakehouse, before = settings.lakehouse, day - dt.timedelta(days=1)

    def features(table):
        return read_date_partitions(spark, lakehouse, table, before)

    sequences, item_stats = features(GOLD_USER_SEQUENCES), features(GOLD_ITEM_STATS)
    pairs = candidate_pairs(read_date_partitions(spark, lakehouse, SILVER_EVENTS, day), sequences, item_stats, day, settings.scoring)
    rows = with_short_side_inputs(training_examples(pairs, sequences, features(GOLD_USER_STATS), item_stats, settings.examples), settings.examples)
    rows = with_bucket_sums(spark, settings, rows, features, enabled=True, version=version).withColumn("score_date", F.col("event_date"))
    replace_date_partitions(rows.drop("event_date"), lakehouse, GOLD_CANDIDATES, day, mergeSchema="true")
    written = read_date_partitions(spark, lakehouse, GOLD_CANDIDATES, day)
    counts = {r["candidate_source"]: r["count"] for r in written.groupBy("candidate_source").count().collect()}
    totals = written.agg(F.countDistinct("user_id").alias("users"), F.count("long_bse").alias("with_bse")).first()
    figures = {
        "date": day.isoformat(), "features_as_of": before.isoformat(), "candidates": sum(counts.values()),
        "by_source": dict(sorted(counts.items())), "users": totals["users"], "with_bse": totals["with_bse"],
    }
    record_run(lakehouse, Run("candidates", [day], began, tables=(GOLD_CANDIDATES,)), figures)
    return {**figures, "seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__":
    run_command("candidates")
