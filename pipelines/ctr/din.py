"""DIN: target attention over the short sequence only (the long one is not read)."""

from __future__ import annotations

import torch

from pipelines.ctr.base import Batch, CtrModel


class Din(CtrModel):
    long_parts = 0

    def long_interest(self, batch: Batch, target: torch.Tensor) -> None:
        return None
