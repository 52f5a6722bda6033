"""The report's plots: pure functions of arrays and frames to PNG bytes.

Each function draws one small figure (6 x 3.2 in at 90 dpi, about 20-40 kB)
on matplotlib's Agg canvas through the object API: no pyplot, so no global
figure state, no display and nothing shared between threads. Inputs are
already reduced (one column, a few thousand points at most where possible);
nothing here reads a table.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # before anything could pick an interactive backend

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZE = (6.0, 3.2)
DPI = 90
# Fixed colors per noise reason, so a reason keeps its color across plots and days.
REASON_COLORS = {"genuine": "#4c72b0", "short_dwell": "#dd8452", "burst": "#c44e52", "bot": "#8172b3"}
_OTHER_COLORS = ["#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]


def _figure(size: tuple[float, float] = SIZE) -> Figure:
    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def reason_color(reason: str, position: int = 0) -> str:
    return REASON_COLORS.get(reason, _OTHER_COLORS[position % len(_OTHER_COLORS)])


def log_bins(values: np.ndarray, count: int = 40, floor: float = 0.1) -> np.ndarray:
    """Logarithmic bin edges covering `values` (clipped below at `floor`)."""
    finite = values[np.isfinite(values)]
    high = max(float(finite.max()) if finite.size else floor * 10, floor * 10)
    return np.geomspace(floor, high * 1.0001, count + 1)


def dwell_distribution_png(dwell_s_by_group: Mapping[str, np.ndarray]) -> bytes:
    """Histograms (log x) of click dwell in seconds, one outline per group
    (genuine, then each noise reason); dwell below 0.1 s counts in the first bin."""
    figure = _figure()
    axes = figure.add_subplot()
    everything = np.concatenate([np.asarray(v, dtype=float) for v in dwell_s_by_group.values()] or [np.zeros(0)])
    bins = log_bins(everything)
    for i, (group, values) in enumerate(dwell_s_by_group.items()):
        values = np.clip(np.asarray(values, dtype=float), bins[0], bins[-1])
        axes.hist(values, bins=bins, histtype="step", linewidth=1.6, color=reason_color(group, i),
                  label=f"{group} ({len(values):,})")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("dwell (s, log)")
    axes.set_ylabel("clicks (log)")
    axes.legend(fontsize=8, frameon=False)
    return _png(figure)


def noise_reasons_over_days_png(counts: pd.DataFrame) -> bytes:
    """Stacked bars of flagged clicks per date and reason, with the flagged share
    of all clicks on a second axis. `counts`: index = dates, columns = reasons
    (a "genuine" column, when present, enters the share but is not stacked)."""
    figure = _figure()
    axes = figure.add_subplot()
    flagged = counts.drop(columns=["genuine"], errors="ignore")
    labels = [str(d) for d in counts.index]
    x = np.arange(len(labels))
    bottom = np.zeros(len(labels))
    for i, reason in enumerate(flagged.columns):
        values = flagged[reason].fillna(0).to_numpy(dtype=float)
        axes.bar(x, values, bottom=bottom, color=reason_color(reason, i), label=reason, width=0.7)
        bottom += values
    axes.set_xticks(x, labels, rotation=30 if len(labels) > 6 else 0, fontsize=8)
    axes.set_ylabel("flagged clicks")
    axes.set_ylim(0, max(1.0, float(bottom.max()) if bottom.size else 1.0) * 1.18)  # room for the legend
    if "genuine" in counts.columns:
        total = counts.fillna(0).sum(axis=1).to_numpy(dtype=float)
        share = np.divide(bottom, total, out=np.zeros_like(bottom), where=total > 0)
        twin = axes.twinx()
        twin.plot(x, share * 100, color="black", marker="o", linewidth=1.2, label="flagged share")
        twin.set_ylabel("flagged share of clicks (%)")
        twin.set_ylim(0, max(5.0, float(share.max()) * 130 if share.size else 5.0))
    axes.legend(fontsize=8, frameon=False, loc="upper left", ncols=min(4, max(1, len(flagged.columns))))
    return _png(figure)


def proxy_ratios_png(fixed: Sequence[tuple[float, float, float | None, float | None]],
                     flags: tuple[float, float, float | None, float | None] | None) -> bytes:
    """Flag rate on confirmed clicks over the rate on all clicks (y) against the
    rate on all clicks (x): each fixed dwell threshold a point of one line, the
    flags a point of their own, each with its 95% interval; 1.0 (a random
    flagger) dashed. Each entry: (rate on all, ratio, interval low, high)."""
    figure = _figure()
    axes = figure.add_subplot()

    def errors(points: Sequence[tuple[float, float, float | None, float | None]]) -> np.ndarray:
        return np.array([[r - (lo if lo is not None else r) for _, r, lo, _ in points],
                         [(hi if hi is not None else r) - r for _, r, _, hi in points]])

    if fixed:
        x = [100 * p[0] for p in fixed]
        axes.errorbar(x, [p[1] for p in fixed], yerr=errors(fixed), color="#8c8c8c", marker="o", markersize=3,
                      capsize=2, linewidth=1.2, label="dwell < 1 .. 10 s")
    if flags is not None:
        axes.errorbar([100 * flags[0]], [flags[1]], yerr=errors([flags]), color=REASON_COLORS["short_dwell"], marker="D",
                      markersize=6, capsize=3, linewidth=0, elinewidth=1.6, label="the flags")
    axes.axhline(1.0, color="black", linestyle="--", linewidth=0.8, label="random flagger")
    axes.set_xlabel("flagged share of all clicks (%)")
    axes.set_ylabel("confirmed / all flag rate")
    axes.set_ylim(bottom=0)
    axes.legend(fontsize=8, frameon=False)
    return _png(figure)


def length_distribution_png(lengths: np.ndarray, cap: int | None = None) -> bytes:
    """Histogram (log x) of per-user sequence lengths, with p50 / p90 / p99 marks."""
    lengths = np.asarray(lengths, dtype=float)
    figure = _figure()
    axes = figure.add_subplot()
    bins = log_bins(np.maximum(lengths, 1), floor=1.0)
    axes.hist(np.clip(lengths, 1, None), bins=bins, color=REASON_COLORS["genuine"], alpha=0.85)
    for q, style in ((50, "-"), (90, "--"), (99, ":")):
        value = float(np.percentile(lengths, q)) if lengths.size else 0.0
        axes.axvline(max(value, 1), color="black", linestyle=style, linewidth=1, label=f"p{q} {value:,.0f}")
    if cap:
        axes.axvline(cap, color="#c44e52", linewidth=1.2, label=f"max_len {cap:,}")
    axes.set_xscale("log")
    axes.set_xlabel("behaviors per user (log)")
    axes.set_ylabel("users")
    axes.legend(fontsize=8, frameon=False)
    return _png(figure)


def occupancy_png(occupancy_by_version: Mapping[str, np.ndarray]) -> bytes:
    """Histograms of per-user bucket occupancy (0..1), one outline per embedding version."""
    figure = _figure()
    axes = figure.add_subplot()
    bins = np.linspace(0, 1, 41)
    for i, (version, values) in enumerate(occupancy_by_version.items()):
        values = np.asarray(values, dtype=float)
        mean = float(values.mean()) if values.size else 0.0
        axes.hist(values, bins=bins, histtype="stepfilled" if len(occupancy_by_version) == 1 else "step",
                  linewidth=1.6, alpha=0.85, color=_OTHER_COLORS[i % 5] if i else REASON_COLORS["genuine"],
                  label=f"{version}: mean {mean:.1%} ({len(values):,} users)")
    axes.set_xlim(0, 1)
    axes.xaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    axes.set_xlabel("occupied buckets / (signatures x 2^bits)")
    axes.set_ylabel("users")
    axes.legend(fontsize=8, frameon=False)
    return _png(figure)


def training_curves_png(histories: Mapping[str, pd.DataFrame]) -> bytes:
    """Two panels, training loss and validation AUC per epoch, one line per
    model; each frame has columns epoch, train_loss, valid_auc (either may be NaN)."""
    figure = _figure((7.2, 3.2))
    loss_axes, auc_axes = figure.subplots(1, 2)
    for i, (label, history) in enumerate(histories.items()):
        color = _OTHER_COLORS[i % 5] if i else REASON_COLORS["genuine"]
        for axes, metric in ((loss_axes, "train_loss"), (auc_axes, "valid_auc")):
            if metric in history and history[metric].notna().any():
                rows = history[history[metric].notna()]
                axes.plot(rows["epoch"], rows[metric], marker="o", color=color, label=label)
    loss_axes.set_title("training loss", fontsize=9)
    auc_axes.set_title("validation AUC", fontsize=9)
    for axes in (loss_axes, auc_axes):
        axes.set_xlabel("epoch")
        axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        axes.tick_params(labelsize=8)
    auc_axes.legend(fontsize=7, frameon=False)
    return _png(figure)


def roc_points(labels: np.ndarray, scores: np.ndarray, max_points: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rates, true positive rates) of the ROC curve, ties grouped,
    thinned to at most `max_points` + 2 points (the ends kept)."""
    labels = np.asarray(labels) > 0.5
    scores = np.asarray(scores, dtype=float)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return np.array([0.0, 1.0]), np.array([0.0, 1.0])
    order = np.argsort(-scores, kind="mergesort")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tp = np.cumsum(sorted_labels)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    tpr, fpr = np.r_[0.0, tp / positives], np.r_[0.0, fp / negatives]
    if len(fpr) > max_points + 2:
        keep = np.unique(np.r_[0, np.linspace(0, len(fpr) - 1, max_points).round().astype(int), len(fpr) - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr, tpr


def roc_png(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """ROC curves (already computed by roc_points), one per label; a label
    starting with "oracle" is drawn dashed, and the chance diagonal dotted."""
    figure = _figure((4.6, 3.8))
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="#8c8c8c", linestyle=":", linewidth=1)
    for i, (label, (fpr, tpr)) in enumerate(curves.items()):
        oracle = label.startswith("oracle")
        axes.plot(fpr, tpr, color="black" if oracle else (_OTHER_COLORS[i % 5] if i else REASON_COLORS["genuine"]),
                  linestyle="--" if oracle else "-", linewidth=1.4, label=label)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_aspect("equal")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.legend(fontsize=7, frameon=False, loc="lower right")
    return _png(figure)


def auc_vs_oracle_png(aucs: Mapping[str, float], oracle_auc: float | None) -> bytes:
    """Horizontal bars of each model's AUC, with the oracle's as a reference line."""
    figure = _figure((6.0, 0.9 + 0.45 * max(1, len(aucs))))
    axes = figure.add_subplot()
    labels = list(aucs)
    values = np.array([aucs[k] for k in labels], dtype=float)
    y = np.arange(len(labels))
    axes.barh(y, values, color=REASON_COLORS["genuine"], height=0.6)
    for yi, value in zip(y, values, strict=True):
        text = f"{value:.4f}" + (f" ({value / oracle_auc:.1%} of oracle)" if oracle_auc else "")
        if value > 0.62:  # inside the bar, clear of the oracle's line
            axes.text(value - 0.005, yi, text, va="center", ha="right", fontsize=8, color="white")
        else:
            axes.text(max(value, 0.5) + 0.005, yi, text, va="center", fontsize=8)
    if oracle_auc is not None:
        axes.axvline(oracle_auc, color="black", linestyle="--", linewidth=1.2, label=f"oracle {oracle_auc:.4f}")
        axes.legend(fontsize=8, frameon=False, loc="lower right")
    axes.set_yticks(y, labels, fontsize=8)
    axes.set_xlim(0.5, 1.0)
    axes.set_xlabel("AUC on the held-out day")
    axes.invert_yaxis()
    return _png(figure)


def score_distribution_png(scores_by_group: Mapping[str, np.ndarray]) -> bytes:
    """Histograms of predicted click probabilities, one outline per candidate source."""
    figure = _figure()
    axes = figure.add_subplot()
    everything = np.concatenate([np.asarray(v, dtype=float) for v in scores_by_group.values()] or [np.zeros(0)])
    high = float(np.nanmax(everything)) if everything.size else 1.0
    bins = np.linspace(0, min(1.0, max(high * 1.02, 0.05)), 51)
    for i, (group, values) in enumerate(scores_by_group.items()):
        axes.hist(np.asarray(values, dtype=float), bins=bins, histtype="step", linewidth=1.6,
                  color=_OTHER_COLORS[i % 5] if i else REASON_COLORS["genuine"], label=f"{group} ({len(values):,})")
    axes.set_xlabel("predicted click probability")
    axes.set_ylabel("candidates")
    axes.legend(fontsize=8, frameon=False)
    return _png(figure)


def stage_timeline_png(stages: Sequence[str], start_s: Sequence[float], duration_s: Sequence[float]) -> bytes:
    """A Gantt chart: one bar per stage run, from its start (seconds after the
    night's first start) for its duration, labelled with the duration."""
    figure = _figure((6.0, 0.9 + 0.32 * max(1, len(stages))))
    axes = figure.add_subplot()
    y = np.arange(len(stages))
    axes.barh(y, duration_s, left=start_s, color=REASON_COLORS["genuine"], height=0.6)
    for yi, left, width in zip(y, start_s, duration_s, strict=True):
        axes.text(left + width, yi, f" {width:,.1f} s", va="center", fontsize=7)
    axes.set_yticks(y, list(stages), fontsize=8)
    axes.invert_yaxis()
    end = max((a + b for a, b in zip(start_s, duration_s, strict=True)), default=1.0)
    axes.set_xlim(0, end * 1.15 or 1.0)
    axes.set_xlabel("seconds since the night's first stage started")
    return _png(figure)
