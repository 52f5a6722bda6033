"""The night's plan: when it trains and on which days, and how skips flow."""

from __future__ import annotations

import datetime as dt

from jobs.night import NIGHT
from pipelines.config import NightSettings
from pipelines.ctr.cadence import nightly_training_range


def _days(*days: int) -> list[dt.date]:
    return [dt.date(2026, 11, d) for d in days]


def test_a_night_trains_on_the_labelled_window_before_it_and_leaves_its_own_day_to_the_gate():
    rules = NightSettings(train_window_days=3)
    assert nightly_training_range(dt.date(2026, 11, 8), rules, _days(1, 2, 4, 5, 6, 7, 8)) == (dt.date(2026, 11, 5), dt.date(2026, 11, 7))
    assert nightly_training_range(dt.date(2026, 11, 3), rules, _days(1, 2, 3)) == (dt.date(2026, 11, 1), dt.date(2026, 11, 2))


def test_a_night_without_two_labelled_days_before_it_does_not_train():
    reason = nightly_training_range(dt.date(2026, 11, 2), NightSettings(), _days(1, 2))
    assert reason == "needs two labelled days in the 7 before 2026-11-02, has 1"


def test_weekly_cadence_trains_on_its_weekday_only():
    rules = NightSettings(train_cadence="weekly", train_weekday=6)
    labelled = _days(*range(1, 16))
    assert nightly_training_range(dt.date(2026, 11, 15), rules, labelled) == (dt.date(2026, 11, 8), dt.date(2026, 11, 14))  # a Sunday
    assert nightly_training_range(dt.date(2026, 11, 16), rules, labelled) == "weekly training runs on weekday 6, 2026-11-16 is weekday 0"


def test_the_night_scores_the_day_that_begins_and_everything_else_the_day_that_ended():
    argv = {s.task_id: s.argv("2026-11-04", "2026-11-05") for s in NIGHT}
    assert argv["ingest_events"] == ["--date", "2026-11-04"]
    assert argv["train_model"] == ["--night", "2026-11-04"]
    assert argv["build_candidates"] == argv["score_candidates"] == ["--date", "2026-11-05"]
    assert [s.task_id for s in NIGHT if s.after_skip] == ["export_embeddings", "build_signatures", "write_report"]
