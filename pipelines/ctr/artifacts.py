"""A trained model on disk, without pickle: weights and vocabularies in one
safetensors file, the model's configuration and metadata in JSON."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save_file

from pipelines.ctr.base import CtrModel, ModelConfig
from pipelines.ctr.batches import Vocabulary
from pipelines.ctr.zoo import build_model

WEIGHTS, CONFIG = "model.safetensors", "config.json"


def save_model(folder: str | Path, model: CtrModel, vocab: Vocabulary, metadata: dict[str, Any]) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()} | vocab.tensors()
    save_file(tensors, str(folder / WEIGHTS))
    (folder / CONFIG).write_text(json.dumps({"model": json.loads(model.config.to_json()), "metadata": metadata}, indent=2, sort_keys=True))
    return folder


@dataclasses.dataclass(frozen=True)
class ModelFiles:
    """A saved model's two files as bytes: what a Ray actor on any node is
    given, so none of them reads a folder that only the driver's node has."""

    weights: bytes
    config: bytes

    @classmethod
    def read(cls, folder: str | Path) -> ModelFiles:
        return cls(weights=(Path(folder) / WEIGHTS).read_bytes(), config=(Path(folder) / CONFIG).read_bytes())


def load_model(saved: str | Path | ModelFiles) -> tuple[CtrModel, Vocabulary, dict[str, Any]]:
    """(model in eval mode, its vocabulary, its metadata) from a folder or its
    files; nothing is unpickled."""
    files = saved if isinstance(saved, ModelFiles) else ModelFiles.read(saved)
    described = json.loads(files.config)
    config = ModelConfig.from_json(json.dumps(described["model"]))
    tensors = load(files.weights)
    model = build_model(config)
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    model.eval()
    return model, Vocabulary.from_tensors(tensors), described["metadata"]


def state_for_checkpoint(
    model: CtrModel, optimizer: torch.optim.Optimizer, best_model: dict[str, torch.Tensor], progress: dict[str, Any]
) -> dict[str, Any]:
    """What a training checkpoint holds: tensors, numbers and strings only, so it
    loads with torch.load(weights_only=True)."""
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "best_model": best_model, "progress": progress}
