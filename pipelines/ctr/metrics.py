"""Ranking and calibration metrics of click predictions (numpy, exact)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

_EPS = 1e-7


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney with tied scores averaged); None
    when only one class is present."""
    labels = np.asarray(labels) > 0.5
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return None
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def gauc(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Per-user AUC weighted by the user's impressions, over users with both
    a click and a non-click (the others carry no ranking information)."""
    frame = pd.DataFrame({"user": users, "label": np.asarray(labels) > 0.5, "score": scores})
    frame["positive_rank"] = frame.groupby("user")["score"].rank(method="average").where(frame["label"], 0.0)
    per_user = frame.groupby("user").agg(n=("label", "size"), pos=("label", "sum"), rank_sum=("positive_rank", "sum"))
    per_user = per_user[(per_user["pos"] > 0) & (per_user["pos"] < per_user["n"])]
    if per_user.empty:
        return None
    neg = per_user["n"] - per_user["pos"]
    user_auc = (per_user["rank_sum"] - per_user["pos"] * (per_user["pos"] + 1) / 2) / (per_user["pos"] * neg)
    return float((user_auc * per_user["n"]).sum() / per_user["n"].sum())


def logloss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, _EPS, 1 - _EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def calibration(labels: np.ndarray, probabilities: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed click rate per decile of the predictions."""
    order = np.argsort(probabilities, kind="stable")
    out = []
    for i, part in enumerate(np.array_split(order, bins)):
        if len(part):
            out.append({"decile": i + 1, "predicted": round(float(probabilities[part].mean()), 5),
                        "observed": round(float(np.asarray(labels)[part].mean()), 5), "rows": int(len(part))})
    return out


def click_metrics(users: np.ndarray, labels: np.ndarray, probabilities: np.ndarray) -> dict[str, object]:
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 5)

    return {
        "rows": int(len(labels)),
        "auc": rounded(auc(labels, probabilities)),
        "gauc": rounded(gauc(users, labels, probabilities)),
        "logloss": rounded(logloss(labels, probabilities)),
        "predicted_ctr": round(float(np.mean(probabilities)), 5) if len(labels) else None,
        "observed_ctr": round(float(np.mean(labels)), 5) if len(labels) else None,
        "calibration": calibration(labels, probabilities),
    }
