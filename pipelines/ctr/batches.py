"""Rows of gold/training_examples (or of candidates to score) -> model batches.

Vectorized over the batch: ids become vocabulary indices by binary search,
sequences are padded on the left so the newest behavior is always last, the
short sequence is the tail of the long one, time gaps to the impression are
log2-bucketed, and for SDIM end to end the distinct long items of the batch
are listed once with (example, distinct item, count) pairs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from pipelines.ctr.base import ModelConfig
from pipelines.ctr.zoo import model_class

EXAMPLE_COLUMNS = [
    "user_id", "item_id", "category_id", "position", "label", "impression_ts",
    "long_item_ids", "long_category_ids", "long_timestamps",
    "user_impressions", "user_clicks", "user_ctr", "user_dwell_mean_ms",
    "item_impressions", "item_clicks", "item_ctr", "item_dwell_mean_ms",
]


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Sorted ids per kind; index i + 1 is the id at position i, 0 is unknown or padding."""

    items: np.ndarray
    categories: np.ndarray
    users: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"items": len(self.items) + 1, "categories": len(self.categories) + 1, "users": len(self.users) + 1}

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"vocab_{k}": torch.from_numpy(np.ascontiguousarray(getattr(self, k))) for k in ("items", "categories", "users")}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, torch.Tensor]) -> Vocabulary:
        return cls(*(tensors[f"vocab_{k}"].numpy() for k in ("items", "categories", "users")))

    @classmethod
    def of(cls, items: Any, categories: Any, users: Any) -> Vocabulary:
        return cls(*(np.unique(np.asarray(ids, dtype=np.int64)) for ids in (items, categories, users)))


@dataclasses.dataclass(frozen=True)
class BatchShape:
    long_len: int
    short_len: int
    gap_buckets: int = 16
    positions: int = 32
    # "e2e": distinct long items and pairs for SDIM; "bse": gathered bucket sums; None: neither.
    sdim_inputs: str | None = None
    signatures: int = 16
    embedding_dim: int = 32
    share_features: bool = False


def shape_for(config: ModelConfig, long_len: int, short_len: int) -> BatchShape:
    """The batch a model of `config` reads: the long inputs its class asks for
    (SDIM: distinct items end to end, or bucket sums in BSE mode) and its share features."""
    return BatchShape(long_len=long_len, short_len=short_len, sdim_inputs=model_class(config.model).long_inputs(config),
                      signatures=config.signatures, embedding_dim=config.embedding_dim, share_features=config.share_features)


def index_of(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Vocabulary index of each id (0 when unknown)."""
    if len(table) == 0:
        return np.zeros(len(ids), dtype=np.int64)
    pos = np.searchsorted(table, ids)
    clipped = np.minimum(pos, len(table) - 1)
    return np.where((pos < len(table)) & (table[clipped] == ids), clipped + 1, 0).astype(np.int64)


def to_batch(rows: pa.RecordBatch | pa.Table | Mapping[str, Any], vocab: Vocabulary, shape: BatchShape) -> dict[str, torch.Tensor]:
    """Tensors for a model from example rows (Arrow, or a dict of numpy columns as Ray Data gives)."""
    n = _length(rows)
    # Scoring candidates for a BSE-mode model carry the short tail and two
    # summaries of the long sequence (see scoring.candidates), not the sequence:
    # the cost of a row then does not depend on the length of the history.
    summarized = shape.sdim_inputs == "bse" and "long_length" in _names(rows)
    side = "short" if summarized else "long"
    items, lengths = _flat(rows[f"{side}_item_ids"], n)
    # Padded to the batch's longest sequence, at most long_len: short histories cost little.
    long_len = int(max(1, min(shape.long_len, lengths.max(initial=0))))
    short_len = min(shape.short_len, long_len)
    categories, _ = _flat(rows[f"{side}_category_ids"], n)
    timestamps, _ = _flat(rows[f"{side}_timestamps"], n)
    kept = np.minimum(lengths, long_len)
    long_length = _numeric(rows["long_length"], n) if summarized else kept
    long_share = _numeric(rows["long_category_share"], n) if summarized else None
    impression_ts = _numeric(rows["impression_ts"], n)
    long_items = _left_padded(index_of(items, vocab.items), lengths, long_len)
    long_categories = _left_padded(index_of(categories, vocab.categories), lengths, long_len)
    gap_s = np.maximum(np.repeat(impression_ts, lengths) - timestamps, 0) / 1000.0
    gaps = np.clip(np.floor(np.log2(1.0 + gap_s / 60.0)), 0, shape.gap_buckets - 1).astype(np.int64)
    long_gaps = _left_padded(gaps, lengths, long_len)
    long_mask = np.arange(long_len)[None, :] >= (long_len - kept)[:, None]
    position = _numeric(rows["position"], n, missing=-1)
    dense = _dense(rows, n, np.minimum(kept, short_len))
    if shape.share_features:
        shares = _category_shares(long_categories, long_mask, short_len, rows, vocab, n, long_share)
        dense = np.concatenate([dense, shares, np.log1p(long_length.astype(np.float32))[:, None]], axis=1)
    batch = {
        "user": index_of(_numeric(rows["user_id"], n).astype(np.int64), vocab.users),
        "item": index_of(_numeric(rows["item_id"], n).astype(np.int64), vocab.items),
        "category": index_of(_numeric(rows["category_id"], n, missing=-1).astype(np.int64), vocab.categories),
        "position": np.where(position < 0, 0, np.minimum(position + 1, shape.positions - 1)).astype(np.int64),
        "dense": dense,
        "label": _numeric(rows["label"], n).astype(np.float32),
        "long_items": long_items, "long_categories": long_categories, "long_gaps": long_gaps, "long_mask": long_mask,
        "short_items": long_items[:, -short_len:], "short_categories": long_categories[:, -short_len:],
        "short_gaps": long_gaps[:, -short_len:], "short_mask": long_mask[:, -short_len:],
    }
    if shape.sdim_inputs == "e2e":
        batch["long_unique"], batch["long_pairs"] = distinct_long_items(long_items, long_mask)
    elif shape.sdim_inputs == "bse":
        batch["long_bse"] = _bse(rows, n, shape)
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def distinct_long_items(long_items: np.ndarray, long_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct items of the batch's long sequences, and (example, distinct
    item, occurrences) for every example and item it holds."""
    example = np.broadcast_to(np.arange(len(long_items))[:, None], long_items.shape)[long_mask]
    ids = long_items[long_mask]
    unique, inverse = np.unique(ids, return_inverse=True)
    keys, counts = np.unique(example.astype(np.int64) * max(len(unique), 1) + inverse, return_counts=True)
    width = max(len(unique), 1)
    pairs = np.stack([keys // width, keys % width, counts], axis=1).astype(np.int64)
    return unique.astype(np.int64), pairs.reshape(-1, 3)


def _dense(rows: Any, n: int, short_length: np.ndarray) -> np.ndarray:
    def log_count(name: str) -> np.ndarray:
        return np.log1p(np.maximum(_numeric(rows[name], n), 0))

    features = [
        log_count("user_impressions"), log_count("user_clicks"), _numeric(rows["user_ctr"], n),
        np.log1p(np.maximum(_numeric(rows["user_dwell_mean_ms"], n), 0) / 1000),
        log_count("item_impressions"), log_count("item_clicks"), _numeric(rows["item_ctr"], n),
        np.log1p(np.maximum(_numeric(rows["item_dwell_mean_ms"], n), 0) / 1000),
        np.log1p(short_length.astype(np.float64)),
    ]
    return np.stack(features, axis=1).astype(np.float32)


def _category_shares(long_categories: np.ndarray, long_mask: np.ndarray, short_len: int, rows: Any,
                     vocab: Vocabulary, n: int, long_share: np.ndarray | None = None) -> np.ndarray:
    """Share of the long and of the short sequence in the candidate's category:
    the user's standing interest in it, given to the model as two numbers.
    `long_share`: the long one precomputed on raw ids (then it counts only for
    a category the vocabulary knows, as index equality does)."""
    target = index_of(_numeric(rows["category_id"], n, missing=-1).astype(np.int64), vocab.categories)
    same = (long_categories == target[:, None]) & long_mask & (target[:, None] > 0)

    def share(part: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return part.sum(axis=1) / np.maximum(mask.sum(axis=1), 1)

    long = share(same, long_mask) if long_share is None else np.where(target > 0, long_share, 0.0)
    return np.stack([long, share(same[:, -short_len:], long_mask[:, -short_len:])], axis=1).astype(np.float32)


def _bse(rows: Any, n: int, shape: BatchShape) -> np.ndarray:
    """[n, H, d] gathered bucket sums; zeros for a row without them."""
    values, lengths = _flat(rows["long_bse"], n)
    width = shape.signatures * shape.embedding_dim
    out = np.zeros((n, width), dtype=np.float32)
    has = lengths == width
    if has.any():
        starts = (np.cumsum(lengths) - lengths)[has]
        out[has] = values[starts[:, None] + np.arange(width)[None, :]]
    return out.reshape(n, shape.signatures, shape.embedding_dim)


def _names(rows: Any) -> list[str]:
    return rows.schema.names if isinstance(rows, pa.RecordBatch | pa.Table) else list(rows)


def _length(rows: Any) -> int:
    return rows.num_rows if isinstance(rows, pa.RecordBatch | pa.Table) else len(rows["label"])


def _numeric(column: Any, n: int, missing: float = 0.0) -> np.ndarray:
    """A numeric column as float64 with nulls and NaN replaced by `missing`."""
    if isinstance(column, pa.ChunkedArray | pa.Array):
        column = column.to_numpy(zero_copy_only=False)
    values = np.asarray(column, dtype=np.float64) if len(column) else np.zeros(n)
    return np.where(np.isnan(values), missing, values)


def _flat(column: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(all values concatenated, length of each row) of a list column."""
    if isinstance(column, pa.ChunkedArray):
        column = pa.concat_arrays(column.chunks) if column.num_chunks != 1 else column.chunk(0)
    if isinstance(column, pa.Array):
        lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        return column.flatten().to_numpy(zero_copy_only=False), lengths
    arrays = [np.asarray(v) if v is not None else np.zeros(0) for v in column]
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    return (np.concatenate(arrays) if arrays else np.zeros(0)), lengths


def _left_padded(values: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """[rows, width]: each row's last `width` values, right-aligned, zeros before."""
    out = np.zeros((len(lengths), width), dtype=np.int64)
    if values.size == 0:
        return out
    ends = np.cumsum(lengths)
    kept = np.minimum(lengths, width)
    row = np.repeat(np.arange(len(lengths)), kept)
    offset = np.arange(kept.sum()) - np.repeat(np.cumsum(kept) - kept, kept)  # 0..kept-1 within a row
    source = np.repeat(ends - kept, kept) + offset
    out[row, width - np.repeat(kept, kept) + offset] = values[source].astype(np.int64)
    return out
