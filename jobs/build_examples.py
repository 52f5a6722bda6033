"""seqlake examples: gold/training_examples of the dates a night (or a range) rewrites.

    seqlake examples --date D                one night: the examples of D - lookback .. D
    seqlake examples --start D1 --end D2     a range of nights in one pass

Labels from silver (rewritten with clean's look-back window, so late clicks
update them); features as of each date's day before: gold/user_sequences,
gold/user_stats and gold/item_stats. The label mode of each source is
configured (examples.label_modes): impressions, or implicit feedback.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.runtime import add_date_range_arguments, date_range, job_parser, parse, print_summary, run_job, settings_from
from pipelines.clickstream.clean import bot_days
from pipelines.clickstream.schema import EventType
from pipelines.config import Settings
from pipelines.examples.training_examples import (
    IMPLICIT,
    IMPRESSIONS,
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
    GOLD_ITEM_STATS,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SILVER_EVENTS,
)
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions


def build_examples(spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None) -> dict[str, object]:
    started, began = time.perf_counter(), now_utc()
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.examples
    first, last = rewritten_dates(start, end, settings.clean.lookback_days)
    day_before = dt.timedelta(days=1)

    def as_of_before(table):
        return read_date_partitions(spark, lakehouse, table, first - day_before, last - day_before)

    silver = read_date_partitions(spark, lakehouse, SILVER_EVENTS, first, last)
    mode = label_mode_of(F.col("source"), rules)
    impressions = without_bot_days(labelled_impressions(silver.where(mode == IMPRESSIONS), rules), silver)
    implicit = implicit_examples(silver.where(mode == IMPLICIT), negative_pool(as_of_before(GOLD_ITEM_STATS), rules), rules)
    labelled = impressions.unionByName(implicit).withColumn("label_mode", label_mode_of(F.col("source"), rules))
    examples = training_examples(
        labelled, as_of_before(GOLD_USER_SEQUENCES), as_of_before(GOLD_USER_STATS), as_of_before(GOLD_ITEM_STATS), rules
    )
    replace_date_partitions(examples, lakehouse, GOLD_TRAINING_EXAMPLES, first, last, maxRecordsPerFile=rules.max_records_per_file)

    of_end = read_date_partitions(spark, lakehouse, GOLD_TRAINING_EXAMPLES, end)
    stats = of_end.agg(
        F.count("*").alias("examples"),
        F.mean("label").alias("label_rate"),
        F.mean((F.size("long_item_ids") > 0).cast("double")).alias("with_history"),
        F.mean(F.size("long_item_ids")).alias("mean_long_len"),
    ).first()
    by_mode = {r["label_mode"]: r["count"] for r in of_end.groupBy("label_mode").count().orderBy("label_mode").collect()}
    silver_of_end = silver.where(F.col("event_date") == F.lit(end))
    bot_impressions = (
        silver_of_end.where((F.col("event_type") == EventType.IMPRESSION.value) & (mode == IMPRESSIONS))
        .join(bot_days(silver_of_end), ["user_id", "event_date"], "left_semi")
        .count()
    )
    figures = {
        "date": end.isoformat() if start == end else f"{start}..{end}",
        "rewritten": f"{first}..{last}",
        "features_as_of": (end - day_before).isoformat(),
        "examples": stats["examples"],
        "examples_by_mode": by_mode,
        "excluded_bot_impressions": bot_impressions,
        "label_rate": round(stats["label_rate"] or 0.0, 4),
        "with_history": round(stats["with_history"] or 0.0, 4),
        "mean_long_len": round(stats["mean_long_len"] or 0.0, 1),
    }
    record_run(lakehouse, Run("examples", days_between(first, last), began, tables=(GOLD_TRAINING_EXAMPLES,)), figures)
    return {**figures, "seconds": round(time.perf_counter() - started, 2)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Build gold/training_examples for a night's dates (or a range of nights).")
    add_date_range_arguments(parser)
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    start, end = date_range(parser, args)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-examples")
    print_summary("examples", run_job("examples", lambda: build_examples(spark, settings, start, end)), as_json=args.json)


if __name__ == "__main__":
    main()
