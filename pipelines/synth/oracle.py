"""The generator's true click probability of each impression, and the same given
only what a nightly batch can know: the oracles that model evaluations and the
report compare against (never read by the pipeline)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow.parquet as pq

from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import filesystem
from pipelines.synth.layout import truth_events_folder

# What identifies a scored impression, in the truth, the examples and ops/evaluations.
PREDICTION_KEYS = ["user_id", "impression_id", "item_id"]


def impression_click_probabilities(truth: str, day: dt.date) -> pd.DataFrame:
    """(PREDICTION_KEYS, click_prob, click_prob_nightly) of the impressions of `day`; MissingInputError
    where the truth has no such day (real data has no oracle)."""
    # pyarrow's filesystems, not pandas' fsspec: the truth may be on s3a://, which fsspec does not know.
    store, folder = filesystem(truth_events_folder(truth, day))
    try:
        frame = pq.read_table(folder, filesystem=store, columns=[*PREDICTION_KEYS, "event_type", "click_prob", "click_prob_nightly"]).to_pandas()
    except (FileNotFoundError, OSError):
        raise MissingInputError(f"no generator truth for {day} (real data has no oracle)") from None
    frame = frame[(frame["event_type"] == "impression") & frame["click_prob"].notna()]
    return frame.drop(columns="event_type").drop_duplicates(PREDICTION_KEYS)
