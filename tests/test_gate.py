"""The promotion gate: a new model replaces the champion only on a held-out
comparison it wins by the margin; anything it cannot measure keeps the champion."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from pipelines.ctr.evaluation import Contender, Decision, promotion_decision

DAY = dt.date(2026, 11, 8)
MARGIN = 0.002


def test_a_winner_by_the_margin_is_promoted():
    assert promotion_decision(Contender("2", 0.7123, "2026-11-01..2026-11-07"), Contender("1", 0.7100, "2026-10-31..2026-11-06"), DAY, MARGIN) == Decision(
        True, "AUC 0.7123 beats the champion's 0.7100 by +0.0023 >= 0.002")


def test_a_loser_and_a_tie_within_the_margin_keep_the_champion():
    champion = Contender("1", 0.7100, "2026-10-31..2026-11-06")
    assert promotion_decision(Contender("2", 0.7050, "2026-11-01..2026-11-07"), champion, DAY, MARGIN) == Decision(
        False, "AUC 0.7050 vs the champion's 0.7100: -0.0050 < margin 0.002")
    assert promotion_decision(Contender("2", 0.7110, "2026-11-01..2026-11-07"), champion, DAY, MARGIN) == Decision(
        False, "AUC 0.7110 vs the champion's 0.7100: +0.0010 < margin 0.002")


def test_the_first_model_is_promoted_only_with_an_auc():
    assert promotion_decision(Contender("1", 0.61, "2026-11-01..2026-11-07"), None, DAY, MARGIN) == Decision(
        True, "no champion yet: v1 (AUC 0.6100) becomes the first")
    # A day with one label only has no AUC: nothing was measured, nothing is promoted.
    for unmeasured in (None, float("nan")):
        assert promotion_decision(Contender("1", unmeasured, "2026-11-01..2026-11-07"), None, DAY, MARGIN) == Decision(
            False, "the candidate v1 has no AUC on 2026-11-08")
    assert promotion_decision(Contender("2", 0.72, "2026-11-01..2026-11-07"), Contender("1", None), DAY, MARGIN) == Decision(
        False, "the champion v1 has no AUC on 2026-11-08: nothing to compare with")


def test_a_model_that_trained_on_the_gate_day_is_refused():
    assert promotion_decision(Contender("2", 0.99, "2026-11-02..2026-11-08"), None, DAY, MARGIN) == Decision(
        False, "the candidate v2 was trained on 2026-11-08 (2026-11-02..2026-11-08): no held-out comparison on that day")
    assert promotion_decision(Contender("2", 0.75, "2026-11-01..2026-11-07"), Contender("1", 0.70, "2026-11-08..2026-11-09"),
                              DAY, MARGIN).reason.startswith("the champion v1 was trained on 2026-11-08")


def test_an_unreadable_registry_fails_instead_of_reading_as_no_champion(tmp_path):
    from pipelines.ctr.registry import champion_version, client
    from tests.conftest import settings_in

    settings = settings_in(tmp_path, f"registry.tracking_uri=sqlite:///{tmp_path / 'mlflow.db'}")
    assert champion_version(settings) is None  # nothing registered
    with client(settings) as registry:
        registry.create_registered_model(settings.registry.model_name)
    assert champion_version(settings) is None  # registered, no alias set
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        db.execute("DROP TABLE registered_model_aliases")
    with pytest.raises(Exception, match="registered_model_aliases"):
        champion_version(settings)


def test_what_a_train_run_killed_after_registering_left_is_withdrawn_by_the_next_and_never_gated(tmp_path, monkeypatch):
    """Runs a (finished: its ledger row), b (killed after registering), c
    (killed, then promoted by hand) of this lakehouse, d of another lakehouse
    on the same registry: b's version goes and its MLflow run ends KILLED;
    c's serves, so it stays; a's and d's are not this withdrawal's to touch."""
    from pipelines.ctr.registry import (
        LAKEHOUSE_TAG,
        RUN_TAG,
        log_and_register,
        model_versions,
        promote,
        reader,
        withdrawn_versions,
    )
    from pipelines.lakehouse.ledger import Run, record_run
    from pipelines.stages.gate import trained_for_night
    from tests.conftest import settings_in

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = settings_in(tmp_path)
    model_folder = tmp_path / "model"
    model_folder.mkdir()
    (model_folder / "config.json").write_text("{}")

    def registered(run: str, lakehouse: str = settings.lakehouse) -> dict[str, str]:
        tags = {"model": "din", "bse_mode": "false", "night": DAY.isoformat(), RUN_TAG: run, LAKEHOUSE_TAG: lakehouse}
        return log_and_register(settings, f"run-{run}", {}, [], {}, model_folder, tags)

    a, b, c, d = registered("a"), registered("b"), registered("c"), registered("d", str(tmp_path / "other"))
    record_run(settings.lakehouse, Run("train", [DAY], dt.datetime(2026, 11, 9), run_id="a"), {})
    promote(settings, c["version"])
    mlflow = reader(settings)
    for killed in (b, c):  # a killed process never ends its MLflow run
        mlflow.update_run(killed["run_id"], status="RUNNING")

    # The gate takes the night's model from a finished run of this lakehouse only.
    assert trained_for_night(settings, DAY) == a["version"]
    assert sorted(withdrawn_versions(settings)) == sorted([
        f"model v{c['version']} by run c kept: it holds champion", f"model v{b['version']} by run b",
        f"mlflow run {b['run_id']} by run b", f"mlflow run {c['run_id']} by run c",
    ])
    assert [v.version for v in model_versions(settings)] == [d["version"], c["version"], a["version"]]
    assert mlflow.get_run(b["run_id"]).info.status == "KILLED"
    assert withdrawn_versions(settings) == [f"model v{c['version']} by run c kept: it holds champion"]
