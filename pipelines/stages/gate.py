"""Gate: the night's new model against the champion on the night's own day, promoted only on evidence."""

from __future__ import annotations

import datetime as dt

from pipelines.config import Settings
from pipelines.ctr.evaluation import Contender, Decision, model_quality, promotion_decision
from pipelines.ctr.registry import (
    LAKEHOUSE_TAG,
    champion_version,
    promote,
    published_versions,
    trained_on_night,
)
from pipelines.errors import NothingToDo
from pipelines.lakehouse.ledger import Run, now_utc, recorded_run
from pipelines.stages.export import export_embeddings


def trained_for_night(settings: Settings, night: dt.date) -> str:
    """The newest version that the night of `night` trained and registered, by
    a train run of this lakehouse that finished (one killed after registering
    did not train the night's model; a registry may serve other lakehouses)."""
    ours = [v for v in published_versions(settings) if v.tags.get(LAKEHOUSE_TAG, settings.lakehouse) == settings.lakehouse]
    trained = trained_on_night(ours, night)
    if trained is not None:
        return trained.version
    raise NothingToDo(f"the night of {night} trained no model")


def gate(settings: Settings, version: str, day: dt.date) -> dict[str, object]:
    """Evaluate the candidate and the champion on the same day; promote the
    candidate (and export its embeddings) if it wins by the margin."""
    with recorded_run(settings.lakehouse, Run("models", [day], now_utc())) as figures:
        candidate = model_quality(settings, version, day)
        champion = champion_version(settings)
        incumbent = model_quality(settings, champion, day) if champion and champion != version else None
        if champion == version:
            decision = Decision(True, f"v{version} is the champion already")
        else:
            decision = promotion_decision(Contender.of(candidate), Contender.of(incumbent) if incumbent else None, day,
                                          settings.registry.promotion_margin)
        figures.update({
            "candidate": version, "candidate_auc": candidate["auc"],
            "champion": champion, "champion_auc": incumbent["auc"] if incumbent else None,
            "margin": settings.registry.promotion_margin, "promoted": decision.promote, "reason": decision.reason,
        })
        if decision.promote and champion != version:
            promote(settings, version)
            figures.update(export_embeddings(settings, version))
    return figures
