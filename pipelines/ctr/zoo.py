"""The model zoo: a name in the configuration -> its class."""

from __future__ import annotations

import numpy as np

from pipelines.ctr.avg_pool import AvgPool
from pipelines.ctr.base import CtrModel, ModelConfig
from pipelines.ctr.din import Din
from pipelines.ctr.long_attention import LongAttention
from pipelines.ctr.sdim import Sdim

MODELS: dict[str, type[CtrModel]] = {"din": Din, "long_attention": LongAttention, "avg_pool": AvgPool, "sdim": Sdim}


def build_model(config: ModelConfig, projection: np.ndarray | None = None) -> CtrModel:
    if config.model not in MODELS:
        raise ValueError(f"unknown model {config.model!r}; known: {', '.join(MODELS)}")
    if config.model == "sdim":
        return Sdim(config, projection)
    return MODELS[config.model](config)
