"""SIM (hard search): the long behaviors of the candidate's category, the most
recent retrieve_k of them, then target attention over those (Pi et al. 2020)."""

from __future__ import annotations

import torch

from pipelines.ctr.base import Batch, CtrModel, ModelConfig, TargetAttention, top_k


class Sim(CtrModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.long_attention = TargetAttention(config.embedding_dim, config.attention_hidden)

    def retrieved(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions [B, K], real [B, K]): the newest long behaviors in the
        candidate's category; an unknown category (index 0) retrieves nothing."""
        categories = batch["long_categories"]
        same = batch["long_mask"] & (categories == batch["category"][:, None]) & (batch["category"][:, None] > 0)
        recency = torch.arange(categories.shape[1], dtype=torch.float32).expand_as(categories)
        return top_k(recency, same, self.config.retrieve_k)

    def long_interest(self, batch: Batch, target: torch.Tensor) -> torch.Tensor:
        index, real = self.retrieved(batch)
        return self.long_attention(target, self.behaviors_at(batch, index), real)
