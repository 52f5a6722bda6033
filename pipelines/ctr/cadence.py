"""Which labelled days a night trains on, or why it does not train."""

from __future__ import annotations

import dataclasses
import datetime as dt

from pipelines.config import NightSettings

DAY = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class TrainingWindow:
    """The labelled dates a night trains on, the last held out for early stopping."""

    first: dt.date
    last: dt.date


@dataclasses.dataclass(frozen=True)
class NoTraining:
    """Why a night does not train."""

    reason: str


def nightly_training_range(night: dt.date, rules: NightSettings, labelled: list[dt.date]) -> TrainingWindow | NoTraining:
    """The window of labelled dates before `night` that its night trains on
    (`night` itself is left for the gate), or why it does not train tonight.
    `labelled`: dates with training examples."""
    if rules.train_cadence == "weekly" and night.weekday() != rules.train_weekday:
        return NoTraining(f"weekly training runs on weekday {rules.train_weekday}, {night} is weekday {night.weekday()}")
    window = [d for d in labelled if night - rules.train_window_days * DAY <= d < night]
    if len(window) < 2:
        return NoTraining(f"needs two labelled days in the {rules.train_window_days} before {night}, has {len(window)}")
    return TrainingWindow(window[0], window[-1])
