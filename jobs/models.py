"""seqlake models: the registered CTR models.

    seqlake models list
    seqlake models promote VERSION              set the champion alias, export its item embeddings
    seqlake models gate --version V --date D    promote V only if it beats the champion on day D by the margin
    seqlake models gate --date D                the same for the newest version the night of D trained
                                                (exit 99 when that night trained none)
    seqlake models export [--version V]         write V's (default: the champion's) item embeddings to
                                                gold/item_embeddings (exit 99 when there is no champion)
"""

from __future__ import annotations

import argparse
import datetime as dt

from jobs.cli import UsageError, iso_date, run_command
from pipelines.bse.embeddings import EMBEDDINGS_SCHEMA
from pipelines.config import Settings
from pipelines.ctr.artifacts import load_model
from pipelines.ctr.embeddings import embedding_version, item_embedding_rows
from pipelines.ctr.evaluation import Contender, Decision, model_quality, promotion_decision
from pipelines.ctr.registry import champion_version, downloaded_model, model_versions, promote
from pipelines.errors import NothingToDo
from pipelines.lakehouse.ledger import Run, now_utc, record_run
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import GOLD_ITEM_EMBEDDINGS
from pipelines.lakehouse.writes import replace_where

ACTIONS = ("list", "promote", "gate", "export")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("target", nargs="?", help="the version to promote")
    parser.add_argument("--version", help="the candidate version (gate, export)")
    parser.add_argument("--date", type=iso_date, help="the held-out day the gate compares on")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    if args.action == "list":
        versions = model_versions(settings)
        if not args.json:
            for v in versions:
                print(f"  v{v['version']:<4} {v.get('model', ''):<16} {v.get('data_range', ''):<24} {', '.join(v['aliases'])}")
        return {"versions": versions}
    if args.action == "promote":
        if not args.target:
            raise UsageError("models promote needs a version")
        promote(settings, args.target)
        return {"promoted": args.target, **export_embeddings(settings, args.target)}
    if args.action == "export":
        version = args.version or champion_version(settings)
        if version is None:
            raise NothingToDo("no champion model yet: nothing to export")
        return export_embeddings(settings, version)
    if not args.date:
        raise UsageError("models gate needs --date")
    return gate(settings, args.version or trained_for_night(settings, args.date), args.date)


def trained_for_night(settings: Settings, night: dt.date) -> str:
    """The newest version `seqlake train --night` registered for `night`."""
    for v in model_versions(settings):
        if v.get("night") == night.isoformat():
            return v["version"]
    raise NothingToDo(f"the night of {night} trained no model")


def gate(settings: Settings, version: str, day: dt.date) -> dict[str, object]:
    """Evaluate the candidate and the champion on the same day; promote the candidate if it wins by the margin."""
    began = now_utc()
    candidate = model_quality(settings, version, day)
    champion = champion_version(settings)
    incumbent = model_quality(settings, champion, day) if champion and champion != version else None
    if champion == version:
        decision = Decision(True, f"v{version} is the champion already")
    else:
        decision = promotion_decision(Contender.of(candidate), Contender.of(incumbent) if incumbent else None, day,
                                      settings.registry.promotion_margin)
    figures: dict[str, object] = {
        "date": day.isoformat(), "candidate": version, "candidate_auc": candidate["auc"],
        "champion": champion, "champion_auc": incumbent["auc"] if incumbent else None,
        "margin": settings.registry.promotion_margin, "promoted": decision.promote, "reason": decision.reason,
    }
    if decision.promote and champion != version:
        promote(settings, version)
        figures.update(export_embeddings(settings, version))
    record_run(settings.lakehouse, Run("models", [day], began), figures)
    return figures


def export_embeddings(settings: Settings, version: str) -> dict[str, object]:
    model, vocab, _ = load_model(downloaded_model(settings, version))
    name = embedding_version(settings.registry.model_name, version)
    if model.config.embedding_dim != settings.bse.embedding_dim:
        raise ValueError(f"bse.embedding_dim: {settings.bse.embedding_dim}, but model v{version} embeds in {model.config.embedding_dim}")
    spark = spark_session(settings.spark, "seqlake-models")
    rows = spark.createDataFrame(item_embedding_rows(model, vocab, name).to_pandas(), schema=EMBEDDINGS_SCHEMA)
    replace_where(rows, settings.lakehouse, GOLD_ITEM_EMBEDDINGS, f"version = '{name}'")
    return {"embedding_version": name, "items_exported": len(vocab.items)}


if __name__ == "__main__":
    run_command("models")
