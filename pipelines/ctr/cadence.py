"""Which labelled days a night trains on, or why it does not train."""

from __future__ import annotations

import datetime as dt

from pipelines.config import NightSettings

DAY = dt.timedelta(days=1)


def nightly_training_range(night: dt.date, rules: NightSettings, labelled: list[dt.date]) -> tuple[dt.date, dt.date] | str:
    """(first, last) labelled dates the night of `night` trains on - the last
    held out for early stopping, `night` itself left for the gate - or the
    reason it does not train tonight. `labelled`: dates with training examples."""
    if rules.train_cadence == "weekly" and night.weekday() != rules.train_weekday:
        return f"weekly training runs on weekday {rules.train_weekday}, {night} is weekday {night.weekday()}"
    window = [d for d in labelled if night - rules.train_window_days * DAY <= d < night]
    if len(window) < 2:
        return f"needs two labelled days in the {rules.train_window_days} before {night}, has {len(window)}"
    return window[0], window[-1]
