"""TWIN: two-stage target attention with one relevance (Chang et al. 2023).

One scaled dot-product relevance of the candidate to each long behavior
(projected query and key, plus a learnt bias per time-gap bucket) retrieves the
retrieve_k most relevant behaviors, and the softmax of the same scores over
those weights their values: the retrieval ranks exactly what the attention
would weigh most. Cheap enough for the whole sequence because the query is
projected once per example: (Wq q) . (Wk k) = k . (Wk^T Wq q).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipelines.ctr.base import Batch, CtrModel, ModelConfig, top_k


class Twin(CtrModel):
    def __init__(self, config: ModelConfig):
        super().__init__(config)
        d = config.embedding_dim
        self.query = nn.Linear(d, d, bias=False)
        self.key = nn.Linear(d, d, bias=False)
        self.value = nn.Linear(d, d)
        self.gap_bias = nn.Embedding(config.gap_buckets, 1)
        nn.init.zeros_(self.gap_bias.weight)

    def relevance(self, batch: Batch, target: torch.Tensor) -> torch.Tensor:
        """[B, L]: the score of every long behavior for the candidate."""
        inherent = self.item(batch["long_items"]) + self.category(batch["long_categories"])
        direction = self.query(target) @ self.key.weight  # Wk^T Wq q, [B, d]
        scores = torch.einsum("bld,bd->bl", inherent, direction) / math.sqrt(target.shape[-1])
        return scores + self.gap_bias(batch["long_gaps"]).squeeze(-1)

    def long_interest(self, batch: Batch, target: torch.Tensor) -> torch.Tensor:
        scores = self.relevance(batch, target)
        index, real = top_k(scores, batch["long_mask"], self.config.retrieve_k)
        weights = torch.softmax(scores.gather(1, index).masked_fill(~real, float("-inf")), dim=1).nan_to_num(0.0)
        return torch.einsum("bk,bkd->bd", weights, self.value(self.behaviors_at(batch, index)))
