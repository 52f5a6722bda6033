"""The model zoo: a name in the configuration -> its class. A new model is one
file with its class (stating what it needs on the class) and one line here."""

from __future__ import annotations

import numpy as np

from pipelines.config import MODEL_NAMES
from pipelines.ctr.avg_pool import AvgPool
from pipelines.ctr.base import CtrModel, ModelConfig
from pipelines.ctr.din import Din
from pipelines.ctr.eta import Eta
from pipelines.ctr.long_attention import LongAttention
from pipelines.ctr.sdim import Sdim
from pipelines.ctr.sim import Sim
from pipelines.ctr.twin import Twin

MODELS: dict[str, type[CtrModel]] = {
    "din": Din, "long_attention": LongAttention, "avg_pool": AvgPool, "sdim": Sdim, "sim": Sim, "eta": Eta, "twin": Twin,
}
if sorted(MODELS) != sorted(MODEL_NAMES):
    raise ImportError(f"pipelines.config.MODEL_NAMES lists {sorted(MODEL_NAMES)}, the zoo has {sorted(MODELS)}")


def model_class(name: str) -> type[CtrModel]:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def build_model(config: ModelConfig, projection: np.ndarray | None = None) -> CtrModel:
    return model_class(config.model).build(config, projection)
