"""Item embeddings: the bootstrap version that lets the night run before a model exists.

Bootstrap vectors are seeded and category-aware: an item's vector is its
category's centre plus item-specific noise, normalized. Items of one category
therefore share SimHash buckets more often than unrelated items, as trained
embeddings would, and the same item always gets the same vector.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.bse.projection import ProjectionMismatchError
from pipelines.config import BseSettings
from pipelines.errors import MissingInputError
from pipelines.lakehouse.spark_schema import spark_schema
from pipelines.lakehouse.tables import GOLD_ITEM_EMBEDDINGS

EMBEDDINGS_SCHEMA = spark_schema(GOLD_ITEM_EMBEDDINGS.schema)
_ITEM_NOISE = 0.6


def bootstrap_vectors(item_ids: np.ndarray, category_ids: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """float32 (n, dim), unit length; category -1 means unknown."""
    vectors = np.empty((len(item_ids), dim), dtype=np.float32)
    centres: dict[int, np.ndarray] = {}
    for i, (item, category) in enumerate(zip(item_ids.tolist(), category_ids.tolist(), strict=True)):
        if category not in centres:
            centres[category] = np.random.default_rng([seed, 1, category + 1]).standard_normal(dim)
        noise = np.random.default_rng([seed, 2, item]).standard_normal(dim)
        vectors[i] = centres[category] + _ITEM_NOISE * noise
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def is_bootstrap(version: str, rules: BseSettings) -> bool:
    """Only the bootstrap version is (re)built by the signatures job, from the
    items seen so far; trained versions are written by training and only read."""
    return version == rules.bootstrap_version


def bootstrap_embeddings(items: DataFrame, version: str, dim: int, seed: int) -> DataFrame:
    """`items` (item_id, category_id) -> gold/item_embeddings rows of `version`."""

    def vectors(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            ids = batch["item_id"].to_numpy(np.int64)
            categories = batch["category_id"].fillna(-1).to_numpy(np.int64)
            yield pd.DataFrame(
                {"item_id": ids, "version": version, "vector": list(bootstrap_vectors(ids, categories, dim, seed))}
            )

    one_row_per_item = items.groupBy("item_id").agg(F.min("category_id").alias("category_id"))
    return one_row_per_item.mapInPandas(vectors, EMBEDDINGS_SCHEMA)


def checked_embeddings(embeddings: DataFrame, version: str, rules: BseSettings) -> int:
    """The number of items of embedding `version`; a clear error when there are
    none or their dimension is not bse.embedding_dim."""
    count, shortest, longest = embeddings.agg(F.count("*"), F.min(F.size("vector")), F.max(F.size("vector"))).first()
    if not count:
        raise MissingInputError(f"no item embeddings of version {version!r}")
    if shortest != rules.embedding_dim or longest != rules.embedding_dim:
        raise ProjectionMismatchError(
            f"bse.embedding_dim: {rules.embedding_dim}, but embeddings {version!r} have {shortest}..{longest} dimensions"
        )
    return count
