"""The Ray Train worker loop: DDP over the workers, data streamed from Ray Data,
a checkpoint per epoch, resume after a lost worker, early stopping on
validation AUC.

Every worker sees the same validation rows (only the training set is split),
so all of them reach the same stopping decision without exchanging it.
"""

from __future__ import annotations

import os
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


def train_worker(config: dict[str, Any]) -> dict[str, Any]:
    """TorchTrainer's train_loop_per_worker. `config`: model (ModelConfig as
    JSON), vocab (dict of arrays), shape (BatchShape fields), projection,
    epochs, patience, batch_size, learning_rate, seed, threads, progress_every and, for
    position_dropout and, for resilience tests, kill_worker_at_epoch (the last
    worker dies once there)."""
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    # As many threads as the CPUs the worker asked for: a 0.5-CPU worker with
    # torch's default (every core) would fight its neighbours for them.
    torch.set_num_threads(config["threads"])
    torch.manual_seed(config["seed"])
    np.random.seed(config["seed"])
    model_config = ModelConfig.from_json(config["model"])
    model = build_model(model_config, config.get("projection"))
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    vocab = Vocabulary(**config["vocab"])
    shape = BatchShape(**config["shape"])
    stopping, history, start_epoch = EarlyStopping(config["patience"]), [], 0
    best_state = None

    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / _STATE, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        best_state = state["best_model"]
        progress = state["progress"]
        start_epoch = int(progress["epoch"]) + 1
        stopping = EarlyStopping(config["patience"], float(progress["best_auc"]), int(progress["best_epoch"]), int(progress["bad_epochs"]))
        history = list(progress["history"])
    model = prepare_model(model)
    plain = model.module if hasattr(model, "module") else model

    def batches(name: str):
        shard = ray.train.get_dataset_shard(name)
        for rows in shard.iter_batches(batch_size=config["batch_size"], batch_format="pyarrow"):
            yield to_batch(rows, vocab, shape)

    dropout = torch.Generator().manual_seed(config["seed"] * 1_000 + rank)

    def training_batches():
        for batch in batches("train"):
            yield with_position_dropout(batch, config["position_dropout"], dropout)

    for epoch in range(start_epoch, config["epochs"]):
        if config.get("kill_worker_at_epoch") == epoch and rank == world - 1:
            marker = Path(config["run_folder"]) / f"killed-at-epoch-{epoch}"
            if not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
                ray.train.get_all_reported_checkpoints()  # the last epoch's checkpoint is registered first
                os._exit(1)
        trained = train_epoch(model, optimizer, training_batches(), config.get("progress_every", 0) if rank == 0 else 0)
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


def load_checkpoint_state(checkpoint: Checkpoint) -> dict[str, Any]:
    """A worker checkpoint's state (model, optimizer, best model, progress), loaded without pickle."""
    with checkpoint.as_directory() as folder:
        return torch.load(Path(folder) / _STATE, weights_only=True)
