"""Offline CTR scores of candidate rows by a registered model.

An SDIM model scores from the precomputed BSE bucket sums of its candidates
(`long_bse`, gathered by `seqlake candidates` under the model's exported
embeddings): its weights are loaded into the BSE-mode twin of the model, so a
score costs the same whatever the length of the user's history. Other models
read the raw sequences.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from pipelines.ctr.artifacts import load_model
from pipelines.ctr.base import CtrModel
from pipelines.ctr.batches import EXAMPLE_COLUMNS, BatchShape, Vocabulary, shape_for, to_batch
from pipelines.ctr.zoo import build_model

SCORE_SCHEMA = pa.schema([
    ("user_id", pa.int64()), ("item_id", pa.int64()), ("candidate_source", pa.string()),
    ("score", pa.float64()), ("model_version", pa.string()), ("score_date", pa.date32()),
])


def bse_twin(model: CtrModel) -> CtrModel:
    """`model` itself, or for an SDIM trained end to end the same weights in BSE mode."""
    if model.config.model != "sdim" or model.config.bse_mode:
        return model
    twin = build_model(dataclasses.replace(model.config, bse_mode=True))
    twin.load_state_dict(model.state_dict())
    return twin.eval()


BSE_SIDE_COLUMNS = ["long_bse", "short_item_ids", "short_category_ids", "short_timestamps", "long_length", "long_category_share"]


def candidate_columns(model: CtrModel) -> list[str]:
    """The candidate columns `model` reads: every example column but the label;
    a BSE-mode SDIM reads the bucket sums, the short tail and the long side's
    summaries instead of the long sequence."""
    columns = [c for c in EXAMPLE_COLUMNS if c != "label"] + ["candidate_source", "score_date"]
    if model.config.model == "sdim" and model.config.bse_mode:
        return [c for c in columns if not c.startswith("long_")] + BSE_SIDE_COLUMNS
    return columns


def click_probabilities(model: CtrModel, vocab: Vocabulary, shape: BatchShape, rows: pa.Table) -> np.ndarray:
    if "label" not in rows.column_names:
        rows = rows.append_column("label", pa.nulls(rows.num_rows, pa.int64()))
    with torch.no_grad():
        return torch.sigmoid(model(to_batch(rows, vocab, shape))).numpy().astype(np.float64)


class ModelReplica:
    """One copy of a model that scores candidate batches (a Ray Data actor)."""

    def __init__(self, model_folder: str, version: str, long_len: int, short_len: int, bse: bool, threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        model, self.vocab, _ = load_model(Path(model_folder))
        self.model = bse_twin(model) if bse else model
        self.shape = shape_for(self.model.config, long_len, short_len)
        self.version = version

    def __call__(self, rows: pa.Table | dict[str, Any]) -> pa.Table:
        rows = rows if isinstance(rows, pa.Table) else pa.table(rows)
        return pa.table({
            "user_id": rows.column("user_id").cast(pa.int64()), "item_id": rows.column("item_id").cast(pa.int64()),
            "candidate_source": rows.column("candidate_source"),
            "score": pa.array(click_probabilities(self.model, self.vocab, self.shape, rows), pa.float64()),
            "model_version": pa.array([self.version] * rows.num_rows, pa.string()),
            "score_date": rows.column("score_date").cast(pa.date32()),
        }, schema=SCORE_SCHEMA)
