"""BSE on Spark: item signatures and per-user bucket sums, vectorized with Arrow."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
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


def updated_bucket_sums(
    base_sums: DataFrame,
    base_sequences: DataFrame,
    sequences: DataFrame,
    base_day: dt.date,
    items: DataFrame,
    rules: BseSettings,
    long_len: int,
) -> DataFrame:
    """user_bucket_sums of `sequences` (user_id, as_of_date, item_ids, timestamps:
    snapshots of dates after `base_day`) from those of `base_day`.

    `base_sums` (user_id, hash_index, code, count, vector_sum) are the bucket
    sums of the long side of `base_sequences` (user_id, item_ids), the
    snapshot of `base_day`. Bucket sums are additive: a later snapshot's are
    the base's plus its behaviors dated after `base_day` (the newest of its
    long side, dated as silver dates them: the day of ts) minus the base's
    oldest that they pushed out of the long side. Only those are hashed, so
    the cost follows what is new, not how long the histories are; a user
    without new behaviors keeps the base's rows.
    """
    buckets = 1 << rules.bits
    no_items = F.array().cast("array<bigint>")

    def newest(values: str) -> Column:
        return F.slice(values, F.greatest(F.size(values) - long_len + 1, F.lit(1)), long_len)

    base = base_sequences.select("user_id", newest("item_ids").alias("_base"))
    keyed = sequences.select(
        "user_id", "as_of_date", newest("item_ids").alias("_long"),
        F.size(F.filter(newest("timestamps"), lambda t: F.to_date(F.timestamp_millis(t)) > F.lit(base_day))).alias("_new"),
    ).join(base, "user_id", "left").withColumn("_base", F.coalesce("_base", no_items))
    # The long side now: the base's newest `kept` and then the `_new` behaviors.
    kept = F.size("_long") - F.col("_new")
    changes = keyed.where(F.col("_new") > 0).select(
        "user_id", "as_of_date",
        F.slice("_long", kept + 1, F.col("_new")).alias("_added"),
        F.slice("_base", F.lit(1), F.greatest(F.size("_base") - kept, F.lit(0))).alias("_dropped"),
    )
    behaviors = changes.select("user_id", "as_of_date", F.explode("_added").alias("item_id"), F.lit(1).alias("sign")).unionByName(
        changes.select("user_id", "as_of_date", F.explode("_dropped").alias("item_id"), F.lit(-1).alias("sign"))
    ).join(items, "item_id")
    key = ["user_id", "as_of_date", "hash_index", "code"]

    def bucket_changes(user: pd.DataFrame) -> pd.DataFrame:
        # Sorted so that float sums do not depend on the shuffle's order.
        user = user.sort_values(["sign", "item_id"], kind="stable")
        codes = np.stack(user["codes"].to_numpy()).astype(np.int64)
        counts, sums = bucket_sums(codes, np.stack(user["vector"].to_numpy()).astype(np.float32), buckets,
                                   user["sign"].to_numpy())
        touched = np.zeros(counts.shape, dtype=bool)
        touched[np.arange(codes.shape[1]), codes] = True
        h, code = np.nonzero(touched)
        return pd.DataFrame({
            "user_id": user["user_id"].iloc[0], "as_of_date": user["as_of_date"].iloc[0],
            "hash_index": h.astype(np.int32), "code": code.astype(np.int32),
            "count": counts[h, code], "vector_sum": list(sums[h, code]),
        })

    changed = behaviors.groupBy("user_id", "as_of_date").applyInPandas(bucket_changes, USER_BSE_SCHEMA).select(
        *key, F.col("count").alias("_count_change"), F.col("vector_sum").alias("_sum_change"),
    )
    # The base's rows carried to each date, then the changes added where there are any.
    before = base_sums.select("user_id", "hash_index", "code", "count", "vector_sum").join(
        sequences.select("user_id", "as_of_date"), "user_id"
    )
    count = F.coalesce("count", F.lit(0)) + F.coalesce("_count_change", F.lit(0))
    vector_sum = F.when(F.col("_sum_change").isNull(), F.col("vector_sum")).when(
        F.col("vector_sum").isNull(), F.col("_sum_change")
    ).otherwise(F.zip_with("vector_sum", "_sum_change", lambda a, b: a + b))
    behind = F.raise_error(F.format_string(
        f"the bucket sums as of {base_day} of user %d do not hold the long side of its snapshot "
        "(examples.train_len or the embeddings changed since): rebuild them in full", F.col("user_id"),
    ))
    return before.join(changed, key, "full_outer").select(
        *key, F.when(count < 0, behind).otherwise(count).alias("count"), vector_sum.alias("vector_sum"),
    ).where(F.col("count") > 0)


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
