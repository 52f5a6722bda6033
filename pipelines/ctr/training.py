"""The training loop's pieces, shared by the Ray Train workers and the plain-torch baseline."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from pipelines.ctr.base import Batch


def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable[Batch], progress_every: int = 0,
                log=print) -> dict[str, float]:
    """One pass of binary cross-entropy steps; the mean loss, examples, steps (batches) and seconds."""
    model.train()
    started, total_loss, examples, i = time.perf_counter(), 0.0, 0, 0
    for i, batch in enumerate(batches, start=1):
        loss = nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += float(loss) * len(batch["label"])
        examples += len(batch["label"])
        if progress_every and i % progress_every == 0:
            rate = examples / (time.perf_counter() - started)
            log(f"  batch {i:>5}: {examples:>9,} examples, loss {total_loss / examples:.4f}, {rate:,.0f} examples/s")
    seconds = time.perf_counter() - started
    return {"train_loss": total_loss / max(examples, 1), "train_examples": examples, "train_batches": i if examples else 0,
            "train_seconds": round(seconds, 2)}


def with_position_dropout(batch: Batch, share: float, generator: torch.Generator) -> Batch:
    """`batch` with the slot position of about `share` of its rows set to
    unknown (index 0): offline candidates have no slot yet, and a position
    index that training never saw would score them with an untrained vector."""
    if share <= 0:
        return batch
    dropped = torch.rand(batch["position"].shape, generator=generator) < share
    return {**batch, "position": torch.where(dropped, torch.zeros_like(batch["position"]), batch["position"])}


@torch.no_grad()
def predictions(model: nn.Module, batches: Iterable[Batch]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user indices, labels, click probabilities) over `batches`."""
    model.eval()
    users, labels, probabilities = [], [], []
    for batch in batches:
        users.append(batch["user"].numpy())
        labels.append(batch["label"].numpy())
        probabilities.append(torch.sigmoid(model(batch)).numpy())
    if not labels:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros(0, np.float32)
    return np.concatenate(users), np.concatenate(labels), np.concatenate(probabilities)


@dataclasses.dataclass
class EarlyStopping:
    """Stop when the validation AUC has not improved for `patience` epochs."""

    patience: int
    best_auc: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, epoch: int, auc: float) -> bool:
        """Record the epoch's AUC; True when it is the best so far."""
        if auc > self.best_auc:
            self.best_auc, self.best_epoch, self.bad_epochs = auc, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs > self.patience
