"""ETA: SimHash top-k retrieval by Hamming distance, then target attention (Chen et al. 2021).

The candidate and every long behavior are hashed by the sign bits of their
item embedding under the persisted projection (the H x tau bits of SDIM's
codes); the retrieve_k behaviors nearest the candidate in Hamming distance
(newest first among ties) go through target attention. The hashing carries
no gradient: the embeddings learn through the attention over what it picks.
"""

from __future__ import annotations

import numpy as np
import torch

from pipelines.ctr.base import (
    Batch,
    CtrModel,
    ModelConfig,
    TargetAttention,
    projection_tensor,
    top_k,
)


class Eta(CtrModel):
    uses_projection = True

    @classmethod
    def build(cls, config: ModelConfig, projection: np.ndarray | None = None) -> Eta:
        return cls(config, projection)

    def __init__(self, config: ModelConfig, projection: np.ndarray | None = None):
        super().__init__(config)
        self.register_buffer("projection", projection_tensor(config, projection).reshape(config.embedding_dim, -1))
        self.long_attention = TargetAttention(config.embedding_dim, config.attention_hidden)

    def signs(self, items: torch.Tensor) -> torch.Tensor:
        """[..., m] of +1 / -1: the SimHash bits of the items' embeddings."""
        return torch.where(self.item(items) @ self.projection > 0, 1.0, -1.0)

    @torch.no_grad()
    def hamming(self, batch: Batch) -> torch.Tensor:
        """[B, L]: bits in which each long behavior's hash differs from the candidate's.
        Hashes the batch's distinct items once; +-1 bits make the distance one product."""
        distinct, inverse = torch.unique(batch["long_items"], return_inverse=True)
        agreement = self.signs(batch["item"]) @ self.signs(distinct).T  # [B, U]: bits equal minus bits different
        bits = self.projection.shape[1]
        return (bits - agreement.gather(1, inverse)) / 2

    def retrieved(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions [B, K], real [B, K]): the nearest long behaviors, newest first among equals."""
        length = batch["long_items"].shape[1]
        recency = torch.arange(length, dtype=torch.float32) / length
        known = batch["long_mask"] & (batch["long_items"] != 0) & (batch["item"][:, None] != 0)
        return top_k(recency - self.hamming(batch), known, self.config.retrieve_k)

    def long_interest(self, batch: Batch, target: torch.Tensor) -> torch.Tensor:
        index, real = self.retrieved(batch)
        return self.long_attention(target, self.behaviors_at(batch, index), real)
