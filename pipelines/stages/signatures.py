"""Signatures (BSE): item signatures and user bucket sums as of a night's dates.

The user bucket sums are rewritten as of the same dates as the sequences they
hash (a night rewrites D - lookback .. D), over the long side of each
sequence (its newest examples.train_len behaviors, what SDIM reads end to
end); the night publishes D under the embedding version. The version names
rows of gold/item_embeddings; the bootstrap version is (re)built here from
the items seen in silver up to the last date, so the night runs end to end
before any model has trained embeddings. The SimHash projection is loaded
from gold/bse_projections (drawn and stored the first time its version is
used) and its hash is recorded on every row written.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.bse.embeddings import bootstrap_embeddings, checked_embeddings, is_bootstrap
from pipelines.bse.gather import require_projection
from pipelines.bse.projection import persisted_projection
from pipelines.bse.signatures import bse_summary, item_signatures, user_bucket_sums
from pipelines.config import Settings
from pipelines.ctr.registry import current_embedding_version
from pipelines.lakehouse.dates import days_between, oldest_kept, rewritten_dates
from pipelines.lakehouse.ledger import Run, now_utc, recorded_run
from pipelines.lakehouse.tables import (
    GOLD_ITEM_EMBEDDINGS,
    GOLD_ITEM_SIGNATURES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
)
from pipelines.lakehouse.writes import (
    date_range_predicate,
    delete_partitions_before,
    read_date_partitions,
    read_table,
    replace_where,
)
from pipelines.quality.gate import audit_and_publish
from pipelines.quality.suites import user_bse_suite


def build_signatures(
    spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None, version: str | None = None
) -> dict[str, object]:
    """BSE rows of the dates the nights start..end rewrite, under `version`
    (default: the champion's embeddings, else the bootstrap)."""
    end = end or start
    lakehouse, rules = settings.lakehouse, settings.bse
    version = version or current_embedding_version(settings)
    first, last = rewritten_dates(start, end, settings.clean.lookback_days)
    projection = persisted_projection(lakehouse, rules)
    of_version = f"version = '{version}'"
    run = Run("signatures", days_between(first, last), now_utc(), tables=(GOLD_ITEM_EMBEDDINGS, GOLD_ITEM_SIGNATURES, GOLD_USER_BSE),
              nights=days_between(start, end), embedding_version=version)
    with recorded_run(lakehouse, run) as figures:
        if is_bootstrap(version, rules):
            items = read_table(spark, lakehouse, SILVER_EVENTS).where(F.col("event_date") <= F.lit(last))
            embeddings = bootstrap_embeddings(items.select("item_id", "category_id"), version, rules.embedding_dim, rules.bootstrap_seed)
            replace_where(embeddings, lakehouse, GOLD_ITEM_EMBEDDINGS, of_version, userMetadata=run.commit_tag)
        embeddings = read_table(spark, lakehouse, GOLD_ITEM_EMBEDDINGS).where(F.col("version") == version)
        item_count = checked_embeddings(embeddings, version, rules)
        replace_where(item_signatures(embeddings, projection), lakehouse, GOLD_ITEM_SIGNATURES, of_version, userMetadata=run.commit_tag)

        signatures = read_table(spark, lakehouse, GOLD_ITEM_SIGNATURES).where(F.col("version") == version)
        require_projection(signatures, projection, GOLD_ITEM_SIGNATURES.name)
        items = embeddings.select("item_id", "vector").join(signatures.select("item_id", "codes"), "item_id")
        sequences = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, first, last)
        bse = user_bucket_sums(sequences, items, rules.bits, settings.examples.train_len).select(
            "*", F.lit(version).alias("version"), F.lit(projection.sha256).alias("projection_sha256")
        )
        audit_and_publish(spark, bse, lakehouse, GOLD_USER_BSE, f"{date_range_predicate(GOLD_USER_BSE, first, last)} AND {of_version}",
                          user_bse_suite(rules.signatures, rules.bits, rules.embedding_dim), first, last, userMetadata=run.commit_tag)
        delete_partitions_before(spark, lakehouse, GOLD_USER_BSE, oldest_kept(first, last, settings.sequences.retention_days))
        figures.update({
            "version": version,
            "projection": projection.version,
            "projection_sha256": projection.sha256[:12],
            "items": item_count,
            **bse_summary(read_date_partitions(spark, lakehouse, GOLD_USER_BSE, last).where(F.col("version") == version), rules),
        })
    return figures
