"""The generator's true click probability of each impression: the oracle that
model evaluations and the report compare against (never read by the pipeline)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from pipelines.errors import MissingInputError
from pipelines.synth.layout import truth_events_folder

# What identifies a scored impression, in the truth, the examples and ops/evaluations.
PREDICTION_KEYS = ["user_id", "impression_id", "item_id"]


def impression_click_probabilities(truth: str, day: dt.date) -> pd.DataFrame:
    """(PREDICTION_KEYS, click_prob) of the impressions of `day`; MissingInputError
    where the truth has no such day (real data has no oracle)."""
    try:
        frame = pd.read_parquet(truth_events_folder(truth, day), columns=[*PREDICTION_KEYS, "event_type", "click_prob"])
    except (FileNotFoundError, OSError):
        raise MissingInputError(f"no generator truth for {day} (real data has no oracle)") from None
    frame = frame[(frame["event_type"] == "impression") & frame["click_prob"].notna()]
    return frame.drop(columns="event_type").drop_duplicates(PREDICTION_KEYS)
