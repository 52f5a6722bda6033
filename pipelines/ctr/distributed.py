"""The Ray Train worker loop: DDP over the workers, data streamed from Ray Data,
a checkpoint per epoch, resume after a lost worker, early stopping on
validation AUC.

Every worker sees the same validation rows (only the training set is split),
so all of them reach the same stopping decision without exchanging it.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import ray.train
import torch
from ray.train import Checkpoint
from ray.train.torch import prepare_model

from pipelines.ctr.artifacts import state_for_checkpoint
from pipelines.ctr.base import ModelConfig
from pipelines.ctr.batches import BatchShape, Vocabulary, to_batch
from pipelines.ctr.metrics import auc
from pipelines.ctr.training import EarlyStopping, predictions, train_epoch, with_position_dropout
from pipelines.ctr.zoo import build_model

_STATE = "state.pt"
# Where a resilience test kills a worker within its epoch: past its first steps, well before its last.
KILLED_AFTER_BATCHES = 2


@dataclasses.dataclass(frozen=True)
class TrainLoop:
    """What every training worker gets: the model, its batches and the loop's settings."""

    model: ModelConfig
    vocab: Vocabulary
    shape: BatchShape
    # SimHash hyperplanes for a model that uses them (ModelConfig's class says).
    projection: np.ndarray | None
    epochs: int
    patience: int
    batch_size: int
    learning_rate: float
    seed: int
    progress_every: int
    position_dropout: float
    # As many torch threads as the CPUs the worker asked for: a 0.5-CPU worker
    # with torch's default (every core) would fight its neighbours for them.
    threads: int
    run_folder: str
    # Resilience tests: the last worker kills itself (SIGKILL) once, in the
    # middle of this epoch, after its first KILLED_AFTER_BATCHES steps.
    kill_worker_mid_epoch: int | None = None

    def as_loop_config(self) -> dict[str, TrainLoop]:
        """TorchTrainer's train_loop_config, which must be a dict."""
        return {"loop": self}


def train_worker(config: dict[str, TrainLoop]) -> dict[str, Any]:
    """TorchTrainer's train_loop_per_worker over `config["loop"]`."""
    loop = config["loop"]
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    torch.set_num_threads(loop.threads)
    torch.manual_seed(loop.seed)
    np.random.seed(loop.seed)
    model = build_model(loop.model, loop.projection)
    optimizer = torch.optim.Adam(model.parameters(), lr=loop.learning_rate)
    vocab, shape = loop.vocab, loop.shape
    stopping, history, start_epoch = EarlyStopping(loop.patience), [], 0
    best_state = None

    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        state = load_checkpoint_state(checkpoint)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        best_state = state["best_model"]
        progress = state["progress"]
        start_epoch = int(progress["epoch"]) + 1
        stopping = EarlyStopping(loop.patience, float(progress["best_auc"]), int(progress["best_epoch"]), int(progress["bad_epochs"]))
        history = list(progress["history"])
    model = prepare_model(model)
    plain = model.module if hasattr(model, "module") else model

    def batches(name: str):
        shard = ray.train.get_dataset_shard(name)
        for rows in shard.iter_batches(batch_size=loop.batch_size, batch_format="pyarrow"):
            yield to_batch(rows, vocab, shape)

    dropout = torch.Generator().manual_seed(loop.seed * 1_000 + rank)

    def training_batches(epoch: int):
        for i, batch in enumerate(batches("train")):
            if i == KILLED_AFTER_BATCHES and loop.kill_worker_mid_epoch == epoch and rank == world - 1:
                _killed_once(Path(loop.run_folder) / f"killed-in-epoch-{epoch}")
            yield with_position_dropout(batch, loop.position_dropout, dropout)

    for epoch in range(start_epoch, loop.epochs):
        trained = train_epoch(model, optimizer, training_batches(epoch), loop.progress_every if rank == 0 else 0)
        _, labels, scores = predictions(model, batches("valid"))
        valid_auc = auc(labels, scores)
        improved = stopping.update(epoch, valid_auc if valid_auc is not None else -trained["train_loss"])
        if improved:
            best_state = {k: v.detach().clone() for k, v in plain.state_dict().items()}
        metrics = {"epoch": epoch, "start_epoch": start_epoch, **trained, "valid_auc": valid_auc,
                   "valid_rows": int(len(labels)), "best_epoch": stopping.best_epoch}
        history.append(metrics)
        if rank == 0:
            print(f"epoch {epoch}: train loss {trained['train_loss']:.4f} ({trained['train_examples']:,} examples, "
                  f"{trained['train_seconds']} s), valid AUC {valid_auc}", flush=True)
        progress = {"epoch": epoch, "best_auc": stopping.best_auc, "best_epoch": stopping.best_epoch,
                    "bad_epochs": stopping.bad_epochs, "history": history}
        with tempfile.TemporaryDirectory() as folder:
            saved = None
            if rank == 0:
                torch.save(state_for_checkpoint(plain, optimizer, best_state, progress), Path(folder) / _STATE)
                saved = Checkpoint.from_directory(folder)
            ray.train.report({k: v for k, v in metrics.items() if v is not None}, checkpoint=saved)
        if stopping.should_stop:
            break
    return {"history": history, "best_epoch": stopping.best_epoch, "best_auc": stopping.best_auc}


def _killed_once(marker: Path) -> None:
    """SIGKILL this worker's process unless `marker` says it was killed before:
    the steps it took since the last checkpoint die with it."""
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    ray.train.get_all_reported_checkpoints()  # the last epoch's checkpoint is registered first
    os.kill(os.getpid(), signal.SIGKILL)


def load_checkpoint_state(checkpoint: Checkpoint) -> dict[str, Any]:
    """A worker checkpoint's state (model, optimizer, best model, progress), loaded without pickle."""
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / _STATE, weights_only=True)
