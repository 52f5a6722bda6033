"""Export: a registered model's item embeddings -> gold/item_embeddings, the vectors BSE hashes under its version."""

from __future__ import annotations

from pipelines.bse.embeddings import EMBEDDINGS_SCHEMA
from pipelines.config import Settings
from pipelines.ctr.artifacts import load_model
from pipelines.ctr.embeddings import embedding_version, item_embedding_rows
from pipelines.ctr.registry import champion_version, downloaded_model, promote
from pipelines.errors import NothingToDo
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import GOLD_ITEM_EMBEDDINGS
from pipelines.lakehouse.writes import replace_where


def export_embeddings(settings: Settings, version: str) -> dict[str, object]:
    model, vocab, _ = load_model(downloaded_model(settings, version))
    name = embedding_version(settings.registry.model_name, version)
    if model.config.embedding_dim != settings.bse.embedding_dim:
        raise ValueError(f"bse.embedding_dim: {settings.bse.embedding_dim}, but model v{version} embeds in {model.config.embedding_dim}")
    spark = spark_session(settings, "seqlake-models")
    rows = spark.createDataFrame(item_embedding_rows(model, vocab, name).to_pandas(), schema=EMBEDDINGS_SCHEMA)
    replace_where(rows, settings.lakehouse, GOLD_ITEM_EMBEDDINGS, f"version = '{name}'")
    return {"embedding_version": name, "items_exported": len(vocab.items)}


def export_champion(settings: Settings) -> dict[str, object]:
    version = champion_version(settings)
    if version is None:
        raise NothingToDo("no champion model yet: nothing to export")
    return export_embeddings(settings, version)


def promote_and_export(settings: Settings, version: str) -> dict[str, object]:
    """Make `version` the champion by hand and export its embeddings."""
    promote(settings, version)
    return {"promoted": version, **export_embeddings(settings, version)}
