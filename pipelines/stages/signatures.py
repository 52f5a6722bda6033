"""Signatures (BSE): item signatures and user bucket sums as of a night's dates.

The user bucket sums are rewritten as of the same dates as the sequences they
hash (a night rewrites D - lookback .. D), over the long side of each
sequence (its newest examples.train_len behaviors, what SDIM reads end to
end); the night publishes D under the embedding version. Bucket sums are
additive: under an unchanged embedding version and projection, a night
starts from the sums of the day before its dates and hashes only the
behaviors that entered or left the long sides since; a new version (a
promotion) hashes whole long sides once. That is exact because an item's
vector under one version never changes: trained versions are written once,
and the bootstrap version (which lets the night run end to end before any
model has trained embeddings) only gains the vectors of items new to it.
The SimHash projection is loaded from gold/bse_projections (drawn and stored
the first time its version is used) and its hash is recorded on every row
written.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.bse.embeddings import bootstrap_embeddings, checked_embeddings, is_bootstrap
from pipelines.bse.gather import require_projection
from pipelines.bse.projection import persisted_projection
from pipelines.bse.signatures import (
    bse_summary,
    item_signatures,
    updated_bucket_sums,
    user_bucket_sums,
)
from pipelines.config import BseSettings, Settings
from pipelines.ctr.registry import current_embedding_version
from pipelines.lakehouse.dates import days_between, oldest_kept, rewritten_dates
from pipelines.lakehouse.ledger import Run, now_utc, recorded_run
from pipelines.lakehouse.session import materialized
from pipelines.lakehouse.tables import (
    GOLD_ITEM_EMBEDDINGS,
    GOLD_ITEM_SIGNATURES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
)
from pipelines.lakehouse.writes import (
    append_rows,
    date_range_predicate,
    delete_partitions_before,
    read_date_partitions,
    read_table,
    replace_where,
    table_exists,
)
from pipelines.quality.gate import audit_and_publish
from pipelines.quality.suites import user_bse_suite
from pipelines.sequences.behavior_sequences import base_snapshot_date


def build_signatures(
    spark: SparkSession, settings: Settings, start: dt.date, end: dt.date | None = None, version: str | None = None,
    full_rebuild: bool = False,
) -> dict[str, object]:
    """BSE rows of the dates the nights start..end rewrite, under `version`
    (default: the champion's embeddings, else the bootstrap): updated from
    those of the day before them when that day has them under the same
    version and projection, otherwise (or with `full_rebuild`) hashed from the
    whole long side."""
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
            add_bootstrap_embeddings(spark, lakehouse, version, first, last, rules, run)
        embeddings = read_table(spark, lakehouse, GOLD_ITEM_EMBEDDINGS).where(F.col("version") == version)
        item_count = checked_embeddings(embeddings, version, rules)
        replace_where(item_signatures(embeddings, projection), lakehouse, GOLD_ITEM_SIGNATURES, of_version, userMetadata=run.commit_tag)

        signatures = read_table(spark, lakehouse, GOLD_ITEM_SIGNATURES).where(F.col("version") == version)
        require_projection(signatures, projection, GOLD_ITEM_SIGNATURES.name)
        items = embeddings.select("item_id", "vector").join(signatures.select("item_id", "codes"), "item_id")
        sequences = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, first, last)
        base_day = base_snapshot_date(first)
        base = None if full_rebuild else published_base(spark, lakehouse, base_day, version, projection.sha256)
        if base is not None:
            sums = updated_bucket_sums(*base, sequences, base_day, items, rules, settings.examples.train_len)
        else:
            sums = user_bucket_sums(sequences, items, rules.bits, settings.examples.train_len)
        bse = sums.select("*", F.lit(version).alias("version"), F.lit(projection.sha256).alias("projection_sha256"))
        audit_and_publish(spark, bse, lakehouse, GOLD_USER_BSE, f"{date_range_predicate(GOLD_USER_BSE, first, last)} AND {of_version}",
                          user_bse_suite(rules.signatures, rules.bits, rules.embedding_dim), first, last, userMetadata=run.commit_tag)
        delete_partitions_before(spark, lakehouse, GOLD_USER_BSE, oldest_kept(first, last, settings.sequences.retention_days))
        figures.update({
            "version": version,
            "mode": "full" if base is None else "incremental",
            "projection": projection.version,
            "projection_sha256": projection.sha256[:12],
            "items": item_count,
            **bse_summary(read_date_partitions(spark, lakehouse, GOLD_USER_BSE, last).where(F.col("version") == version), rules),
        })
    return figures


def add_bootstrap_embeddings(
    spark: SparkSession, lakehouse: str, version: str, first: dt.date, last: dt.date, rules: BseSettings, run: Run
) -> None:
    """Embed under the bootstrap `version` the items of silver's dates first..last
    that it has no vector for yet (every item up to `last` the first time):
    a night's cost follows its new items, and an item keeps the vector it was
    first given, which the bucket sums built on it hold."""
    items = read_table(spark, lakehouse, SILVER_EVENTS).where(F.col("event_date") <= F.lit(last))
    if table_exists(spark, lakehouse, GOLD_ITEM_EMBEDDINGS):
        known = read_table(spark, lakehouse, GOLD_ITEM_EMBEDDINGS).where(F.col("version") == version).select("item_id")
        if known.limit(1).count():
            items = items.where(F.col("event_date") >= F.lit(first)).join(known, "item_id", "left_anti")
    new = materialized(bootstrap_embeddings(items.select("item_id", "category_id"), version, rules.embedding_dim,
                                            rules.bootstrap_seed))
    if new.limit(1).count():
        append_rows(new, lakehouse, GOLD_ITEM_EMBEDDINGS, userMetadata=run.commit_tag)


def published_base(
    spark: SparkSession, lakehouse: str, day: dt.date, version: str, projection_sha256: str
) -> tuple[DataFrame, DataFrame] | None:
    """(bucket sums, sequences) as of `day` when both are published there, the
    sums under `version` and the projection of `projection_sha256`: the base a
    night updates. None when they are not."""
    if not table_exists(spark, lakehouse, GOLD_USER_BSE):
        return None
    sums = read_date_partitions(spark, lakehouse, GOLD_USER_BSE, day).where(
        (F.col("version") == version) & (F.col("projection_sha256") == projection_sha256)
    )
    sequences = read_date_partitions(spark, lakehouse, GOLD_USER_SEQUENCES, day)
    return (sums, sequences) if sums.limit(1).count() and sequences.limit(1).count() else None

