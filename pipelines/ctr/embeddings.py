"""A trained model's item embeddings as a version of gold/item_embeddings, so
that the signatures job hashes with the promoted model's embeddings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipelines.ctr.base import CtrModel
from pipelines.ctr.batches import Vocabulary


def embedding_version(model_name: str, version: str) -> str:
    return f"{model_name}-v{version}"


def item_embedding_rows(model: CtrModel, vocab: Vocabulary, version: str) -> pa.Table:
    """item_id, version, vector for every item of the model's vocabulary."""
    vectors = model.item.weight.detach().numpy()[1:].astype(np.float32)  # row 0 is padding / unknown
    return pa.table({
        "item_id": pa.array(vocab.items, pa.int64()),
        "version": pa.array([version] * len(vocab.items), pa.string()),
        "vector": pa.array(list(vectors), pa.list_(pa.float32())),
    })
