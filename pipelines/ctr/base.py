"""What every CTR model shares: its configuration, embeddings, DIN-style target
attention and the MLP head. A model adds only how it reads the long sequence.

Inputs are a batch of tensors (see pipelines.ctr.batches): the target user,
item, category and slot position, dense statistics, the short sequence (the
last examples.short_len behaviors) and the long one (the last train_len), each
behavior an item, a category and a time-gap bucket.
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from pipelines.ctr.labels import model_label

if TYPE_CHECKING:
    from pipelines.config import Settings

Batch = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model around its saved weights."""

    model: str
    items: int  # vocabulary sizes, index 0 being padding / unknown
    categories: int
    users: int
    # The hand-made share features (the candidate category's share of the long
    # and of the short sequence, the long length): off, a model knows of the
    # long sequence only what its own long side reads (DIN: nothing).
    share_features: bool = False
    # Off: no per-user embedding (the user is known by the sequences and statistics).
    user_embedding: bool = True
    embedding_dim: int = 32
    gap_buckets: int = 16
    positions: int = 32
    attention_hidden: tuple[int, ...] = (64, 32)
    mlp_hidden: tuple[int, ...] = (128, 64)
    # SDIM: hash functions and bits of the persisted projection; bse_mode reads
    # the long side as precomputed bucket sums instead of hashing behaviors.
    signatures: int = 16
    bits: int = 3
    bse_mode: bool = False
    # SIM, ETA, TWIN: how many long behaviors the first stage retrieves for target attention.
    retrieve_k: int = 64

    @classmethod
    def for_vocabulary(cls, model: str, sizes: dict[str, int], settings: Settings, bse_mode: bool = False) -> ModelConfig:
        """The configuration a night trains `model` with: vocabulary `sizes`, the
        embedding width and SimHash shape of bse, the layers and options of train."""
        return cls(
            model=model, share_features=settings.train.share_features, embedding_dim=settings.bse.embedding_dim,
            attention_hidden=settings.train.attention_hidden, mlp_hidden=settings.train.mlp_hidden,
            signatures=settings.bse.signatures, bits=settings.bse.bits, bse_mode=bse_mode,
            retrieve_k=settings.train.retrieve_k, user_embedding=settings.train.user_embedding, **sizes,
        )

    @property
    def dense_features(self) -> int:
        return dense_width(self.share_features)

    @property
    def label(self) -> str:
        return model_label(self.model, self.bse_mode)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        fields: dict[str, Any] = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def dense_width(share_features: bool) -> int:
    """Columns of a batch's "dense": eight user and item statistics and the short
    length, then with share features the long and short shares and the long length."""
    return 12 if share_features else 9


def mlp(sizes: tuple[int, ...], last_activation: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if last_activation or i < len(sizes) - 2:
            layers.append(nn.PReLU())
    return nn.Sequential(*layers)


class TargetAttention(nn.Module):
    """DIN's activation unit: an MLP scores each behavior k against the target q
    from [q, k, q - k, q * k]; the interest is the softmax-weighted sum of the
    behaviors (padding masked out)."""

    def __init__(self, dim: int, hidden: tuple[int, ...]):
        super().__init__()
        self.score = nn.Sequential(mlp((4 * dim, *hidden)), nn.Linear(hidden[-1], 1))

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q = query.unsqueeze(1).expand_as(keys)
        logits = self.score(torch.cat([q, keys, q - keys, q * keys], dim=-1)).squeeze(-1)
        logits = logits.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0)  # a user without behaviors: all zero
        return torch.einsum("bt,btd->bd", weights, keys)


def projection_tensor(config: ModelConfig, projection: np.ndarray | None) -> torch.Tensor:
    """The persisted SimHash projection (zeros until loaded with the weights), checked against the config's shape."""
    shape = (config.embedding_dim, config.signatures, config.bits)
    matrix = torch.zeros(shape) if projection is None else torch.from_numpy(np.asarray(projection, dtype=np.float32))
    if tuple(matrix.shape) != shape:
        raise ValueError(f"projection of shape {tuple(matrix.shape)} for a model expecting {shape}")
    return matrix


def top_k(relevance: torch.Tensor, mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first stage of a two-stage model: per row, the positions of the `k`
    most relevant behaviors among `mask` ([B, L] each), and which of them are
    real (a row with fewer than k behaviors pads with masked positions)."""
    k = min(k, relevance.shape[1])
    index = relevance.masked_fill(~mask, float("-inf")).topk(k, dim=1).indices
    return index, mask.gather(1, index)


class CtrModel(nn.Module):
    """Base: embeddings, the short sequence through target attention, and an MLP
    head over [user (optional), target, position, dense, short interest, long interest]."""

    long_parts = 1  # how many d-wide vectors long_interest returns (0: none)
    # What a model needs and can do, read by training, batches and scoring
    # instead of its name: hashing with the stored SimHash projection, and a
    # BSE mode that reads the long side as precomputed bucket sums.
    uses_projection: ClassVar[bool] = False
    has_bse_mode: ClassVar[bool] = False

    @classmethod
    def build(cls, config: ModelConfig, projection: np.ndarray | None = None) -> CtrModel:
        """A fresh model of `config`; `projection` for a model that uses one."""
        return cls(config)

    @classmethod
    def long_inputs(cls, config: ModelConfig) -> str | None:
        """The long-side inputs its batches carry besides the behaviors (BatchShape.sdim_inputs)."""
        return None

    def __init__(self, config: ModelConfig):
        super().__init__()
        d = config.embedding_dim
        self.config = config
        self.item = nn.Embedding(config.items, d)
        self.category = nn.Embedding(config.categories, d)
        self.user = nn.Embedding(config.users, d) if config.user_embedding else None
        self.gap = nn.Embedding(config.gap_buckets, d)
        self.position = nn.Embedding(config.positions, d)
        self.short_attention = TargetAttention(d, config.attention_hidden)
        width = d * (3 + config.user_embedding + self.long_parts) + config.dense_features
        self.head = nn.Sequential(mlp((width, *config.mlp_hidden)), nn.Linear(config.mlp_hidden[-1], 1))
        for table in (self.item, self.category, self.user, self.gap, self.position):
            if table is not None:
                nn.init.normal_(table.weight, std=0.05)

    def target(self, batch: Batch) -> torch.Tensor:
        return self.item(batch["item"]) + self.category(batch["category"])

    def behaviors(self, batch: Batch, side: str) -> torch.Tensor:
        """[B, T, d]: item + category + time-gap embeddings of one sequence."""
        return self.item(batch[f"{side}_items"]) + self.category(batch[f"{side}_categories"]) + self.gap(batch[f"{side}_gaps"])

    def behaviors_at(self, batch: Batch, index: torch.Tensor) -> torch.Tensor:
        """[B, K, d]: the long behaviors at positions `index` [B, K], embedded
        after the gather, so that a retrieval never embeds the whole sequence."""
        def at(name: str) -> torch.Tensor:
            return batch[f"long_{name}"].gather(1, index)

        return self.item(at("items")) + self.category(at("categories")) + self.gap(at("gaps"))

    def long_interest(self, batch: Batch, target: torch.Tensor) -> torch.Tensor | None:
        raise NotImplementedError

    def forward(self, batch: Batch) -> torch.Tensor:
        target = self.target(batch)
        short = self.short_attention(target, self.behaviors(batch, "short"), batch["short_mask"])
        parts = [target, self.position(batch["position"]), batch["dense"], short]
        if self.user is not None:
            parts.insert(0, self.user(batch["user"]))
        long = self.long_interest(batch, target)
        if long is not None:
            parts.append(long)
        return self.head(torch.cat(parts, dim=-1)).squeeze(-1)
