"""seqlake signatures: BSE signatures of items and bucket sums of users as of a night's dates.

    seqlake signatures --date D [--embeddings VERSION]
    seqlake signatures --start D1 --end D2 [--embeddings VERSION]

The user bucket sums are rewritten as of the same dates as the sequences they
hash (a night rewrites D - lookback .. D). VERSION names rows of
gold/item_embeddings; the configured bootstrap version (bse.bootstrap_version)
is (re)built here from the items seen in silver up to the last date, so the
night runs end to end before any model has trained embeddings. The SimHash
projection is loaded from gold/bse_projections (drawn and stored the first
time its version is used) and its hash is recorded on every row written.
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
from pipelines.bse.embeddings import bootstrap_embeddings
from pipelines.bse.projection import ProjectionMismatchError, persisted_projection
from pipelines.bse.signatures import item_signatures, user_bucket_sums
from pipelines.config import Settings
from pipelines.errors import MissingInputError
from pipelines.lakehouse.dates import days_between, oldest_kept, rewritten_dates
from pipelines.lakehouse.ledger import Run, now_utc, record_run
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import (
    GOLD_ITEM_EMBEDDINGS,
    GOLD_ITEM_SIGNATURES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
    table_uri,
)
from pipelines.lakehouse.writes import delete_partitions_before, read_date_partitions, read_table, replace_where


def build_signatures(
    spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None, version: str | None = None
) -> dict[str, object]:
    started, began = time.perf_counter(), now_utc()
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.bse
    version = version or rules.bootstrap_version
    first, last = rewritten_dates(start, end, settings.clean.lookback_days)
    projection = persisted_projection(lakehouse, rules)
    of_version = f"version = '{version}'"
    if version == rules.bootstrap_version:
        items = read_table(spark, lakehouse, SILVER_EVENTS).where(F.col("event_date") <= F.lit(last)).select("item_id", "category_id")
        embeddings = bootstrap_embeddings(items, version, rules.embedding_dim, rules.bootstrap_seed)
        replace_where(embeddings, lakehouse, GOLD_ITEM_EMBEDDINGS, of_version)
    embeddings = read_table(spark, lakehouse, GOLD_ITEM_EMBEDDINGS).where(F.col("version") == version)
    sizes = embeddings.agg(F.count("*"), F.min(F.size("vector")), F.max(F.size("vector"))).first()
    if not sizes[0]:
        raise MissingInputError(f"no item embeddings of version {version!r} in {table_uri(lakehouse, GOLD_ITEM_EMBEDDINGS)}")
    if sizes[1] != rules.embedding_dim or sizes[2] != rules.embedding_dim:
        raise ProjectionMismatchError(
            f"bse.embedding_dim: {rules.embedding_dim}, but embeddings {version!r} have {sizes[1]}..{sizes[2]} dimensions"
        )
    replace_where(item_signatures(embeddings, projection), lakehouse, GOLD_ITEM_SIGNATURES, of_version)

    signatures = read_table(spark, lakehouse, GOLD_ITEM_SIGNATURES).where(F.col("version") == version).select("item_id", "codes")
    items = embeddings.select("item_id", "vector").join(signatures, "item_id")
    sequences = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, first, last)
    bse = user_bucket_sums(sequences, items, rules.bits).select(
        "*", F.lit(version).alias("version"), F.lit(projection.sha256).alias("projection_sha256")
    )
    replace_where(bse, lakehouse, GOLD_USER_BSE, f"as_of_date >= DATE'{first}' AND as_of_date <= DATE'{last}' AND {of_version}")
    delete_partitions_before(spark, lakehouse, GOLD_USER_BSE, oldest_kept(first, last, settings.sequences.retention_days))

    written = read_date_partitions(spark, lakehouse, GOLD_USER_BSE, last).where(F.col("version") == version)
    stats = written.agg(
        F.countDistinct("user_id").alias("users"),
        F.count("*").alias("buckets"),
        F.sum("count").alias("behaviors"),
    ).first()
    possible = (stats["users"] or 0) * rules.signatures * (1 << rules.bits)
    figures = {
        "date": last.isoformat() if start == end else f"{start}..{end}",
        "rewritten": f"{first}..{last}",
        "version": version,
        "projection": projection.version,
        "projection_sha256": projection.sha256[:12],
        "items": sizes[0],
        "users": stats["users"],
        "behaviors_hashed": (stats["behaviors"] or 0) // rules.signatures,
        "occupied_buckets": stats["buckets"],
        "bucket_occupancy": round(stats["buckets"] / possible, 4) if possible else 0.0,
    }
    run = Run("signatures", days_between(first, last), began, tables=(GOLD_ITEM_EMBEDDINGS, GOLD_ITEM_SIGNATURES, GOLD_USER_BSE))
    record_run(lakehouse, run, figures)
    return {**figures, "seconds": round(time.perf_counter() - started, 2)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Build BSE item signatures and user bucket sums as of a night's dates.")
    add_date_range_arguments(parser)
    parser.add_argument("--embeddings", help="item embedding version (default: bse.bootstrap_version)")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    start, end = date_range(parser, args)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, "seqlake-signatures")
    figures = run_job("signatures", lambda: build_signatures(spark, settings, start, end, args.embeddings))
    print_summary("signatures", figures, as_json=args.json)


if __name__ == "__main__":
    main()
