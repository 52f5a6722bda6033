"""BSE on Spark: item signatures and per-user bucket sums, vectorized with Arrow."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.bse.projection import Projection
from pipelines.bse.simhash import bucket_sums, simhash_codes
from pipelines.config import BseSettings
from pipelines.lakehouse.spark_schema import spark_schema
from pipelines.lakehouse.tables import GOLD_ITEM_SIGNATURES, GOLD_USER_BSE

SIGNATURES_SCHEMA = spark_schema(GOLD_ITEM_SIGNATURES.schema)
# The buckets one user's behaviors fill; the publishing job adds the version and projection.
USER_BSE_SCHEMA = spark_schema(GOLD_USER_BSE.arrow("user_id", "as_of_date", "hash_index", "code", "count", "vector_sum"))


def item_signatures(embeddings: DataFrame, projection: Projection) -> DataFrame:
    """gold/item_embeddings rows -> gold/item_signatures rows: H codes per item,
    with the hash of the projection that made them."""
    matrix, sha256 = projection.matrix, projection.sha256

    def codes(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            vectors = np.stack(batch["vector"].to_numpy()).astype(np.float32)
            yield pd.DataFrame(
                {
                    "item_id": batch["item_id"],
                    "version": batch["version"],
                    "codes": list(simhash_codes(vectors, matrix).astype(np.int32)),
                    "projection_sha256": sha256,
                }
            )

    return embeddings.mapInPandas(codes, SIGNATURES_SCHEMA)


def user_bucket_sums(sequences: DataFrame, items: DataFrame, bits: int, long_len: int) -> DataFrame:
    """Per user and as-of date of `sequences` (user_id, as_of_date, item_ids) and
    each occupied (h, code): the count and the vector sum of the behaviors of
    the long side (the newest `long_len`, what SDIM reads end to end) in it.
    `items`: item_id, vector, codes."""
    buckets = 1 << bits
    newest = F.slice("item_ids", F.greatest(F.size("item_ids") - long_len + 1, F.lit(1)), long_len)
    behaviors = sequences.select("user_id", "as_of_date", F.explode(newest).alias("item_id")).join(items, "item_id")

    def per_user(user: pd.DataFrame) -> pd.DataFrame:
        # Rows arrive in shuffle order: sort them so that float sums do not depend on it.
        user = user.sort_values("item_id", kind="stable")
        codes = np.stack(user["codes"].to_numpy()).astype(np.int64)
        vectors = np.stack(user["vector"].to_numpy()).astype(np.float32)
        counts, sums = bucket_sums(codes, vectors, buckets)
        h, code = np.nonzero(counts)
        return pd.DataFrame(
            {
                "user_id": user["user_id"].iloc[0],
                "as_of_date": user["as_of_date"].iloc[0],
                "hash_index": h.astype(np.int32),
                "code": code.astype(np.int32),
                "count": counts[h, code],
                "vector_sum": list(sums[h, code]),
            }
        )

    return behaviors.groupBy("user_id", "as_of_date").applyInPandas(per_user, USER_BSE_SCHEMA)


def bse_summary(user_bse: DataFrame, rules: BseSettings) -> dict[str, object]:
    """Users, behaviors hashed and bucket occupancy of one as-of date's bucket sums."""
    stats = user_bse.agg(
        F.countDistinct("user_id").alias("users"), F.count("*").alias("buckets"), F.sum("count").alias("behaviors")
    ).first()
    possible = (stats["users"] or 0) * rules.signatures * (1 << rules.bits)
    return {
        "users": stats["users"],
        "behaviors_hashed": (stats["behaviors"] or 0) // rules.signatures,
        "occupied_buckets": stats["buckets"],
        "bucket_occupancy": round(stats["buckets"] / possible, 4) if possible else 0.0,
    }


BSE_PUBLICATION_COLUMNS = ["bse_version", "bse_trained_through", "bse_projection_sha256"]


def candidate_bucket_sums(
    rows: DataFrame, published: DataFrame, user_bse: DataFrame, signatures: DataFrame, rules: BseSettings
) -> DataFrame:
    """Training examples (or candidates) plus what SDIM's BSE mode reads instead
    of the long sequence, `long_bse`: for each hash function h in order, the
    user's bucket sum as of features_as_of in the candidate item's code_h, d
    floats each. An empty bucket, and every bucket of an item without a
    signature (no embedding to hash: end to end it fills no bucket either), are
    zeros. `published` (features_as_of, then BSE_PUBLICATION_COLUMNS) names the
    bucket sums published for each as-of date; a row whose date has none gets
    nulls: missing sums, never zeros that would read as "no long-term interest".
    A row is (user_id, impression_id, position, item_id, event_date)."""
    dim, hashes = rules.embedding_dim, rules.signatures
    key = ["user_id", "impression_id", "_slot", "item_id", "event_date"]
    keyed = rows.withColumn("_slot", F.coalesce(F.col("position"), F.lit(-1))).join(
        F.broadcast(published.select("features_as_of", *BSE_PUBLICATION_COLUMNS)), "features_as_of", "left"
    )
    wanted = (
        keyed.where(F.col("bse_version").isNotNull())
        .select(*key, F.col("features_as_of").alias("as_of_date"), "bse_version")
        .join(signatures.select("item_id", F.col("version").alias("bse_version"), "codes"), ["item_id", "bse_version"])
        .select(*key, "as_of_date", "bse_version", F.posexplode("codes").alias("hash_index", "code"))
    )
    found = wanted.join(
        user_bse.select("user_id", "as_of_date", F.col("version").alias("bse_version"), "hash_index", "code", "vector_sum"),
        ["user_id", "as_of_date", "bse_version", "hash_index", "code"], "left",
    )
    zeros = F.array_repeat(F.lit(0.0).cast("float"), dim)
    gathered = found.groupBy(*key).agg(
        F.array_sort(F.collect_list(F.struct("hash_index", F.coalesce("vector_sum", zeros).alias("v")))).alias("_b")
    ).select(*key, F.flatten(F.transform("_b", lambda b: b["v"])).alias("_sums"))
    no_signature = F.array_repeat(F.lit(0.0).cast("float"), hashes * dim)
    return keyed.join(gathered, key, "left").select(
        *[c for c in keyed.columns if c not in ("_slot", *BSE_PUBLICATION_COLUMNS)],
        F.when(F.col("bse_version").isNotNull(), F.coalesce("_sums", no_signature)).alias("long_bse"),
        *BSE_PUBLICATION_COLUMNS,
    )
