"""Offline CTR scores of candidate rows by a registered model.

An SDIM scores a candidate from its precomputed BSE bucket sums (`long_bse`)
when they were published under the embeddings the model scores from (see
pipelines.ctr.registry.scoring_embedding_version): the weights of a model
trained end to end go into its BSE-mode twin, so the score costs the same
whatever the length of the user's history and equals the end-to-end score.
A candidate without such sums is scored end to end from the raw sequence,
and the scoring plan counts both; a BSE-mode model has no end-to-end twin
(its embeddings are not those its sums came from), so it needs the sums for
every candidate. Other models read the raw sequences.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from pipelines.ctr.artifacts import ModelFiles, load_model
from pipelines.ctr.base import CtrModel
from pipelines.ctr.batches import EXAMPLE_COLUMNS, BatchShape, Vocabulary, shape_for, to_batch
from pipelines.ctr.zoo import build_model
from pipelines.errors import MissingInputError
from pipelines.lakehouse.tables import SCORES_CTR


def bse_twin(model: CtrModel) -> CtrModel:
    """`model` itself, or for an SDIM trained end to end the same weights in BSE mode."""
    if not model.has_bse_mode or model.config.bse_mode:
        return model
    twin = build_model(dataclasses.replace(model.config, bse_mode=True))
    twin.load_state_dict(model.state_dict())
    return twin.eval()


BSE_SIDE_COLUMNS = ["long_bse", "bse_version", "short_item_ids", "short_category_ids", "short_timestamps", "long_length",
                    "long_category_share"]


@dataclasses.dataclass(frozen=True)
class ScoringPlan:
    """Which candidates a model scores from bucket sums (those published under
    `embedding_version`) and which end to end."""

    embedding_version: str | None
    from_bse: int
    end_to_end: int

    @property
    def long_side(self) -> str:
        return "+".join(side for side, n in (("bse", self.from_bse), ("sequence", self.end_to_end)) if n) or "none"

    def columns(self) -> list[str]:
        """The candidate columns the plan reads: the long sequence only where a row
        is scored end to end, the bucket sums and the short side where from BSE."""
        columns = [c for c in EXAMPLE_COLUMNS if c != "label"] + ["candidate_source", "score_date"]
        if not self.from_bse:
            return columns
        bse = [c for c in columns if not c.startswith("long_")] + BSE_SIDE_COLUMNS
        return bse if not self.end_to_end else list(dict.fromkeys(columns + bse))


def scoring_plan(model: CtrModel, bse_versions: pa.Array | pa.ChunkedArray, embedding_version: str | None) -> ScoringPlan:
    """The plan for candidates whose sums carry `bse_versions` (null: none
    published), for a model that scores from sums under `embedding_version`."""
    rows = len(bse_versions)
    if not model.has_bse_mode or embedding_version is None:
        return ScoringPlan(None, 0, rows)
    from_bse = int(pc.sum(pc.fill_null(pc.equal(bse_versions, embedding_version), False)).as_py() or 0)
    if model.config.bse_mode and from_bse < rows:
        found = ", ".join(f"{v['values']}: {v['counts']}" for v in pc.value_counts(bse_versions).to_pylist())
        raise MissingInputError(
            f"a BSE-mode SDIM scores from bucket sums under {embedding_version!r}; of {rows} candidates, "
            f"{rows - from_bse} have other or none ({found}): "
            f"rerun `seqlake signatures --embeddings {embedding_version}` and `seqlake candidates` for the date"
        )
    # No candidate under the model's embeddings (their sums are under another
    # version): every row end to end, and replicas read no bse_version column.
    return ScoringPlan(embedding_version if from_bse else None, from_bse, rows - from_bse)


def click_probabilities(model: CtrModel, vocab: Vocabulary, shape: BatchShape, rows: pa.Table) -> np.ndarray:
    if "label" not in rows.column_names:
        rows = rows.append_column("label", pa.nulls(rows.num_rows, pa.int64()))
    with torch.no_grad():
        return torch.sigmoid(model(to_batch(rows, vocab, shape))).numpy().astype(np.float64)


class ModelReplica:
    """One copy of a model that scores candidate batches (a Ray Data actor):
    rows with bucket sums under `embedding_version` through the model's BSE
    twin, the others end to end."""

    def __init__(self, model_files: ModelFiles, version: str, long_len: int, short_len: int, embedding_version: str | None,
                 threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        model, self.vocab, _ = load_model(model_files)
        self.version, self.embedding_version = version, embedding_version
        self.end_to_end = None if model.config.bse_mode else (model, shape_for(model.config, long_len, short_len))
        twin = bse_twin(model) if embedding_version is not None else None
        self.from_bse = None if twin is None else (twin, shape_for(twin.config, long_len, short_len))

    def __call__(self, rows: pa.Table | dict[str, Any]) -> pa.Table:
        rows = rows if isinstance(rows, pa.Table) else pa.table(rows)
        scores = np.empty(rows.num_rows, dtype=np.float64)
        summed = (np.zeros(rows.num_rows, dtype=bool) if self.from_bse is None else
                  pc.fill_null(pc.equal(rows.column("bse_version"), self.embedding_version), False).to_numpy(zero_copy_only=False))
        for mask, scorer in ((summed, self.from_bse), (~summed, self.end_to_end)):
            if mask.any():
                model, shape = scorer
                scores[mask] = click_probabilities(model, self.vocab, shape, rows.filter(pa.array(mask)))
        return pa.table({
            "user_id": rows.column("user_id").cast(pa.int64()), "item_id": rows.column("item_id").cast(pa.int64()),
            "candidate_source": rows.column("candidate_source"),
            "score": pa.array(scores, pa.float64()),
            "model_version": pa.array([self.version] * rows.num_rows, pa.string()),
            "score_date": rows.column("score_date").cast(pa.date32()),
        }, schema=SCORES_CTR.schema)


def bse_parity(candidates: pa.Table, history_lengths: pa.Table, model_files: ModelFiles, version: str, long_len: int,
               short_len: int, embedding_version: str) -> dict[str, object]:
    """How far the scores of `candidates` from their bucket sums under
    `embedding_version` are from the same model end to end on the raw
    sequences, over all of them and over the users whose history
    (`history_lengths`: user_id, length) runs past the long side."""
    model, _, _ = load_model(model_files)
    if not model.has_bse_mode or model.config.bse_mode:
        raise MissingInputError(f"model v{version} ({model.config.label}) "
                                "has no end-to-end and BSE forms to compare")
    rows = candidates.filter(pc.fill_null(pc.equal(candidates.column("bse_version"), embedding_version), False))
    if not rows.num_rows:
        raise MissingInputError(f"no candidate carries bucket sums under {embedding_version}")
    from_bse = ModelReplica(model_files, version, long_len, short_len, embedding_version)(rows).column("score").to_numpy()
    end_to_end = ModelReplica(model_files, version, long_len, short_len, None)(rows).column("score").to_numpy()
    diff = np.abs(from_bse - end_to_end)
    long_users = pc.filter(history_lengths.column("user_id"), pc.greater(history_lengths.column("length"), long_len))
    past = pc.is_in(rows.column("user_id"), value_set=long_users.combine_chunks()).to_numpy(zero_copy_only=False)
    return {
        "version": version, "embedding_version": embedding_version, "long_side": long_len, "candidates": rows.num_rows,
        "users": len(pc.unique(rows.column("user_id"))),
        "users_past_long_side": len(pc.unique(rows.column("user_id").filter(pa.array(past)))),
        "rows_past_long_side": int(past.sum()),
        "max_abs_diff": float(diff.max()),
        "max_abs_diff_past_long_side": float(diff[past].max()) if past.any() else None,
    }
