"""AvgPool: the mean of the long sequence's behavior embeddings (no attention)."""

from __future__ import annotations

import torch

from pipelines.ctr.base import Batch, CtrModel


class AvgPool(CtrModel):
    def long_interest(self, batch: Batch, target: torch.Tensor) -> torch.Tensor:
        mask = batch["long_mask"].unsqueeze(-1).float()
        total = (self.behaviors(batch, "long") * mask).sum(dim=1)
        return total / mask.sum(dim=1).clamp(min=1.0)
