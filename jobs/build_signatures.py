"""seqlake signatures: BSE signatures of items and bucket sums of users as of a date.

    seqlake signatures --date D --embeddings VERSION

VERSION names rows of gold/item_embeddings; the configured bootstrap version
(bse.bootstrap_version) is (re)built here from the items seen in silver up to
D, so the night runs end to end before any model has trained embeddings.
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
from pipelines.bse.embeddings import bootstrap_embeddings
from pipelines.bse.signatures import item_signatures, user_bucket_sums
from pipelines.config import ConfigError, Settings
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import (
    GOLD_ITEM_EMBEDDINGS,
    GOLD_ITEM_SIGNATURES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
    table_uri,
)
from pipelines.lakehouse.writes import read_date_partitions, replace_where


def build_signatures(spark: SparkSession, settings: Settings, day: dt.date, version: str) -> dict[str, object]:
    started = time.perf_counter()
    lakehouse, rules = settings.lakehouse, settings.bse

    def load(table):
        return spark.read.format("delta").load(table_uri(lakehouse, table))

    of_version = f"version = '{version}'"
    if version == rules.bootstrap_version:
        items = load(SILVER_EVENTS).where(F.col("event_date") <= F.lit(day)).select("item_id", "category_id")
        embeddings = bootstrap_embeddings(items, version, rules.embedding_dim, rules.bootstrap_seed)
        replace_where(embeddings, lakehouse, GOLD_ITEM_EMBEDDINGS, of_version)
    embeddings = load(GOLD_ITEM_EMBEDDINGS).where(F.col("version") == version)
    sizes = embeddings.agg(F.count("*"), F.min(F.size("vector")), F.max(F.size("vector"))).first()
    if not sizes[0]:
        raise ValueError(f"no item embeddings of version {version!r} in {table_uri(lakehouse, GOLD_ITEM_EMBEDDINGS)}")
    if sizes[1] != rules.embedding_dim or sizes[2] != rules.embedding_dim:
        raise ConfigError(
            f"bse.embedding_dim: {rules.embedding_dim}, but embeddings {version!r} have {sizes[1]}..{sizes[2]} dimensions"
        )
    replace_where(item_signatures(embeddings, rules), lakehouse, GOLD_ITEM_SIGNATURES, of_version)

    signatures = load(GOLD_ITEM_SIGNATURES).where(F.col("version") == version).select("item_id", "codes")
    items = embeddings.select("item_id", "vector").join(signatures, "item_id")
    sequences = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, day)
    bse = user_bucket_sums(sequences, items, rules).select(
        "*", F.lit(version).alias("version"), F.lit(day).alias("as_of_date")
    )
    replace_where(bse, lakehouse, GOLD_USER_BSE, f"as_of_date = DATE'{day}' AND {of_version}")

    written = read_date_partitions(spark, lakehouse, GOLD_USER_BSE, day).where(F.col("version") == version)
    stats = written.agg(
        F.countDistinct("user_id").alias("users"),
        F.count("*").alias("buckets"),
        F.sum("count").alias("behaviors"),
    ).first()
    possible = (stats["users"] or 0) * rules.signatures * (1 << rules.bits)
    return {
        "date": day.isoformat(),
        "version": version,
        "items": sizes[0],
        "users": stats["users"],
        "behaviors_hashed": (stats["behaviors"] or 0) // rules.signatures,
        "occupied_buckets": stats["buckets"],
        "bucket_occupancy": round(stats["buckets"] / possible, 4) if possible else 0.0,
        "seconds": round(time.perf_counter() - started, 2),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Build BSE item signatures and user bucket sums as of a date.")
    parser.add_argument("--date", type=iso_date, required=True)
    parser.add_argument("--embeddings", help="item embedding version (default: bse.bootstrap_version)")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-signatures")
    version = args.embeddings or settings.bse.bootstrap_version
    try:
        figures = build_signatures(spark, settings, args.date, version)
    except (ValueError, ConfigError) as exc:
        sys.exit(f"seqlake signatures: {exc}")
    print_summary("signatures", figures, as_json=args.json)


if __name__ == "__main__":
    main()
