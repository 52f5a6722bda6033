"""SDIM: DIN on the short sequence plus the hash-gathered interest over the long one.

For each of H SimHash functions (the persisted projection, the same as the
signatures job's), the behaviors that share the candidate's code are summed;
the interest is the mean over h of those L2-normalized sums. End to end, the
codes are computed once per distinct item of the batch and the sums are one
sparse product (batch, hash) x distinct items -> item embeddings, so a step
never gathers the B x L behavior embeddings. In BSE mode the sums arrive
precomputed (gold/user_bse, gathered for the candidate's codes) and a step
does not touch the long sequence at all.
"""

from __future__ import annotations

import numpy as np
import torch

from pipelines.bse.simhash import simhash_codes
from pipelines.ctr.base import Batch, CtrModel, ModelConfig, projection_tensor


class Sdim(CtrModel):
    uses_projection = True
    has_bse_mode = True

    @classmethod
    def build(cls, config: ModelConfig, projection: np.ndarray | None = None) -> Sdim:
        return cls(config, projection)

    @classmethod
    def long_inputs(cls, config: ModelConfig) -> str:
        """Bucket sums in BSE mode; end to end, the distinct long items and their pairs."""
        return "bse" if config.bse_mode else "e2e"

    def __init__(self, config: ModelConfig, projection: np.ndarray | None = None):
        super().__init__(config)
        self.register_buffer("projection", projection_tensor(config, projection))

    def long_interest(self, batch: Batch, target: torch.Tensor) -> torch.Tensor:
        sums = batch["long_bse"] if self.config.bse_mode else self.bucket_sums(batch)
        return interest(sums)

    def bucket_sums(self, batch: Batch) -> torch.Tensor:
        """[B, H, d]: per example and hash function, the sum of the long
        behaviors' item embeddings whose code equals the candidate's."""
        hashes, dim = self.config.signatures, self.config.embedding_dim
        unique = self.item(batch["long_unique"])  # [U, d]
        pairs = batch["long_pairs"]  # [P, 3]: example, distinct item, times it occurs
        example, item, count = pairs[:, 0], pairs[:, 1], pairs[:, 2]
        with torch.no_grad():
            item_codes = simhash_codes(unique, self.projection)  # [U, H]
            candidate_codes = simhash_codes(self.item(batch["item"]), self.projection)  # [B, H]
            # Unknown items (index 0) have no embedding the signatures job could
            # hash: they fill no bucket, as in BSE mode.
            known = (batch["long_unique"][item] != 0) & (batch["item"][example] != 0)
            pair, h = ((item_codes[item] == candidate_codes[example]) & known[:, None]).nonzero(as_tuple=True)
        size = (batch["item"].shape[0] * hashes, unique.shape[0])
        weights = torch.sparse_coo_tensor(
            torch.stack([example[pair] * hashes + h, item[pair]]), count[pair].to(unique.dtype), size, check_invariants=False
        )
        return torch.sparse.mm(weights, unique).view(-1, hashes, dim)


def interest(bucket_sums: torch.Tensor) -> torch.Tensor:
    """Mean over hash functions of the L2-normalized bucket sums; an empty bucket adds zero."""
    norms = bucket_sums.norm(dim=-1, keepdim=True)
    return (bucket_sums / torch.where(norms == 0, torch.ones_like(norms), norms)).mean(dim=1)
