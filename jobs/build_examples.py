"""seqlake examples: gold/training_examples for the impressions of a date.

Labels from the date's silver clicks; features as of the day before: the long
and short sequences of gold/user_sequences (as of D-1) and user and item
statistics over examples.stats_days days before D.
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

from jobs.runtime import iso_date, job_parser, parse, print_summary, settings_from
from pipelines.config import Settings
from pipelines.examples.training_examples import (
    item_statistics,
    labelled_impressions,
    training_examples,
    user_statistics,
)
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import (
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
    table_uri,
)
from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions


def build_examples(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    started = time.perf_counter()
    lakehouse, rules = settings.lakehouse, settings.examples
    before = day - dt.timedelta(days=1)
    silver = spark.read.format("delta").load(table_uri(lakehouse, SILVER_EVENTS))
    history = silver.where(
        F.col("event_date").between(F.lit(day - dt.timedelta(days=rules.stats_days)), F.lit(before))
    )
    examples = training_examples(
        labelled_impressions(silver.where(F.col("event_date") == F.lit(day)), rules),
        read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, before),
        user_statistics(history),
        item_statistics(history),
        rules,
    )
    replace_date_partitions(
        examples, lakehouse, GOLD_TRAINING_EXAMPLES, day, maxRecordsPerFile=rules.max_records_per_file
    )
    stats = read_date_partitions(spark, lakehouse, GOLD_TRAINING_EXAMPLES, day).agg(
        F.count("*").alias("examples"),
        F.mean("label").alias("label_rate"),
        F.mean((F.size("long_item_ids") > 0).cast("double")).alias("with_history"),
        F.mean(F.size("long_item_ids")).alias("mean_long_len"),
    ).first()
    return {
        "date": day.isoformat(),
        "features_as_of": before.isoformat(),
        "examples": stats["examples"],
        "label_rate": round(stats["label_rate"] or 0.0, 4),
        "with_history": round(stats["with_history"] or 0.0, 4),
        "mean_long_len": round(stats["mean_long_len"] or 0.0, 1),
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Build gold/training_examples for the impressions of a date.")
    parser.add_argument("--date", type=iso_date, required=True)
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-examples")
    print_summary("examples", build_examples(spark, settings, args.date), as_json=args.json)


if __name__ == "__main__":
    main()
