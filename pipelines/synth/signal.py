"""Whether a generated world's long history carries signal, measured without a model.

On the last day of the truth, each impression of a human user is scored by
the share of the user's genuine clicks before that day that fall in the
impression item's category: over the whole history (long) and over its last
`recent` clicks (short). If interests that only the long history reveals
exist, the long share predicts the day's clicks better (AUC) than the short
one; the truth's own click probability (the oracle) bounds both, and so does
its probability given only what the night before knows (the nightly oracle). Nothing
here is fitted, so no model of this project can shape the answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.ctr.metrics import auc


def category_share_aucs(truth: pd.DataFrame, item_category: np.ndarray, recent: int = 50) -> dict[str, float | int]:
    """AUCs of the long and short category-share predictors, and of the oracle,
    on the last day's impressions of human users.

    `truth`: the generator's truth rows (event_type, user_id, item_id,
    impression_id, ts, label, click_prob, click_prob_nightly, is_bot_user) of every day;
    `item_category`: the category of item id i at index i - 1."""
    humans = truth[~truth["is_bot_user"]]
    day = pd.to_datetime(humans["ts"], unit="ms").dt.date
    last = day.max()
    clicks = humans[(humans["event_type"] == "click") & (humans["label"] == "genuine")]
    history = clicks[day[clicks.index] < last].sort_values(["user_id", "ts"], kind="stable")
    shown = humans[(humans["event_type"] == "impression") & (day == last)]
    clicked = pd.MultiIndex.from_frame(clicks[["impression_id", "item_id"]])
    labels = pd.MultiIndex.from_frame(shown[["impression_id", "item_id"]]).isin(clicked)
    shown_category = item_category[shown["item_id"].to_numpy() - 1]

    def share_of_shown(part: pd.DataFrame) -> np.ndarray:
        in_category = pd.DataFrame({"user_id": part["user_id"].to_numpy(),
                                    "category": item_category[part["item_id"].to_numpy() - 1]})
        counts = in_category.value_counts().rename("n").reset_index()
        counts["share"] = counts["n"] / counts.groupby("user_id")["n"].transform("sum")
        keys = pd.DataFrame({"user_id": shown["user_id"].to_numpy(), "category": shown_category})
        return keys.merge(counts[["user_id", "category", "share"]], how="left", on=["user_id", "category"])["share"].fillna(0.0).to_numpy()

    long_auc = auc(labels, share_of_shown(history))
    short_auc = auc(labels, share_of_shown(history.groupby("user_id").tail(recent)))
    lengths = history.groupby("user_id").size()
    return {
        "impressions": int(len(shown)), "clicks": int(labels.sum()),
        "history_p50": float(lengths.median()) if len(lengths) else 0.0,
        "history_max": int(lengths.max()) if len(lengths) else 0,
        "long_share_auc": round(long_auc, 4), "short_share_auc": round(short_auc, 4),
        "long_minus_short": round(long_auc - short_auc, 4),
        "oracle_auc": round(auc(labels, shown["click_prob"].to_numpy()), 4),
        "nightly_oracle_auc": round(auc(labels, shown["click_prob_nightly"].to_numpy()), 4),
    }
