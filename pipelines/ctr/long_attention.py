"""LongAttention: the same target attention over the whole long sequence; the
expensive reference that SDIM approximates (cost grows with its length)."""

from __future__ import annotations

import torch

from pipelines.ctr.base import Batch, CtrModel, ModelConfig, TargetAttention


class LongAttention(CtrModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.long_attention = TargetAttention(config.embedding_dim, config.attention_hidden)

    def long_interest(self, batch: Batch, target: torch.Tensor) -> torch.Tensor:
        return self.long_attention(target, self.behaviors(batch, "long"), batch["long_mask"])
