"""The report's sections, each built from what pipelines.reporting.inputs read:
pure functions of frames and arrays to html.Section (figures, captions, tables).
They compute the few figures a caption states (percentiles, AUCs, shares) and
leave the drawing to pipelines.reporting.figures."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pipelines.ctr.metrics import auc, gauc, logloss
from pipelines.ctr.registry import ModelVersion
from pipelines.reporting import figures
from pipelines.reporting.html import Image, Section, Table
from pipelines.reporting.inputs import GENUINE, Predictions
from pipelines.synth.oracle import PREDICTION_KEYS

# (key, title) of every section, in the report's order.
TITLES: dict[str, str] = {
    "dwell": "Dwell of genuine and flagged clicks",
    "noise": "Clicks by noise reason over the days",
    "proxy": "Noise flags against later evidence of interest",
    "sequences": "Behavior sequence lengths",
    "bse": "BSE bucket occupancy",
    "training": "Training curves",
    "roc": "ROC on the held-out day",
    "oracle": "AUC vs the oracle",
    "scores": "Score distribution",
    "quality": "Data-quality results",
    "timings": "Stage timings of the night",
}


def percent(share: float) -> str:
    return f"{share:.1%}"


def _section(key: str, *items: Image | Table | str) -> Section:
    return Section(key, TITLES[key], items)


def dwell_section(clicks: pd.DataFrame, day: dt.date) -> Section:
    """`clicks`: dwell_ms and noise_reason ("genuine" or the reason) of the day's clicks."""
    known = clicks[clicks["dwell_ms"].notna()]
    groups = [GENUINE] * (GENUINE in set(known["noise_reason"])) + sorted(set(known["noise_reason"]) - {GENUINE})
    dwell_s = {g: known.loc[known["noise_reason"] == g, "dwell_ms"].to_numpy(dtype=float) / 1000 for g in groups}
    rows = [[g, int(len(v)), float(np.median(v)) if len(v) else None, percent(np.mean(v < 5)) if len(v) else None]
            for g, v in dwell_s.items()]
    flagged = int((clicks["noise_reason"] != GENUINE).sum())
    caption = (f"{len(clicks):,} clicks on {day}, {flagged:,} flagged ({flagged / max(len(clicks), 1):.1%}); "
               f"{len(clicks) - len(known):,} without a dwell left out. Log-log histogram; dwell under 0.1 s in the first bin.")
    return _section(
        "dwell",
        Image(figures.dwell_distribution_png(dwell_s), alt=f"Histogram of click dwell times on {day}, genuine vs each noise reason",
              caption=caption),
        Table(["clicks", "count", "median dwell (s)", "share under 5 s"], rows),
    )


def noise_section(counts: pd.DataFrame) -> Section:
    """`counts`: clicks per event date (index) and reason (columns, "genuine" among them)."""
    total = counts.sum(axis=1)
    flagged = total - counts.get(GENUINE, 0)
    rows = [[str(day), *[int(v) for v in counts.loc[day]], percent(flagged.loc[day] / total.loc[day]) if total.loc[day] else None]
            for day in counts.index]
    return _section(
        "noise",
        Image(figures.noise_reasons_over_days_png(counts), alt="Stacked bars of flagged clicks per day by noise reason",
              caption=f"Flagged clicks per event date ({counts.index.min()} to {counts.index.max()}), stacked by reason; "
                      "the line is the flagged share of all clicks. Late events restate a date for the look-back window."),
        Table(["event date", *counts.columns, "flagged share"], rows),
    )


def proxy_section(proxy: Mapping[str, object]) -> Section:
    """`proxy`: the clean run's proxy figures (denoise_quality.proxy_figures)."""
    def ci(f: Mapping[str, object]) -> str:
        low, high = f.get("ratio_ci") or (None, None)
        return "-" if low is None else f"[{low:.2f}, {high:.2f}]"

    def row(name: str, f: Mapping[str, object]) -> list[object]:
        return [name, percent(f["rate_all"]), percent(f["rate_confirmed"]) if f["rate_confirmed"] is not None else None,
                _ratio(f["ratio"]), ci(f)]

    flags, matched = proxy["flags"], proxy["matched_rate"]
    # By threshold: the ledger's JSON keeps keys sorted as text ("10s" before "2s").
    fixed = dict(sorted(proxy["fixed"].items(), key=lambda item: float(item[0].removesuffix("s"))))

    def point(f: Mapping[str, object]) -> tuple[float, float, float | None, float | None] | None:
        low, high = f.get("ratio_ci") or (None, None)
        return None if f["ratio"] is None else (f["rate_all"], f["ratio"], low, high)

    evidence = ", ".join(f"{kind} {n:,}" for kind, n in proxy["evidence"].items() if kind != "none")
    compared = ("no fixed threshold of the grid flags as many clicks as the flags" if matched is None else
                f"At the flags' rate, dwell < {matched['threshold_s']:.2f} s has a ratio of {matched['ratio']:.2f}; "
                f"the flags' minus it: {matched['flags_minus_fixed']:+.2f} "
                f"{ci({'ratio_ci': matched['flags_minus_fixed_ci']})} (below 0: the flags separate better).")
    caption = (f"Clicks of {proxy['clicks_of']} ({proxy['clicks']:,} of {proxy['users']:,} users): {proxy['confirmed']:,} "
               f"confirmed by what the same user did later ({evidence or 'nothing'}; within {proxy['confirmation_days']} days, "
               "as far as the days written hold them: the newest clicks have had less time). A flagger that tells noise from "
               "interest flags confirmed clicks less often than clicks at large: ratio below 1.0. 95% intervals over users "
               f"({proxy['resamples']:,} resamples). {compared}")
    fixed_points = [p for p in (point(f) for f in fixed.values()) if p is not None]
    return _section(
        "proxy",
        Image(figures.proxy_ratios_png(fixed_points, point(flags)),
              alt="Confirmed over all flag rate of the flags and of each fixed dwell threshold", caption=caption),
        Table(["flagger", "flags of all clicks", "of confirmed clicks", "ratio", "95% interval"],
              [row("the flags", flags), *(row(f"  of them {reason}", f) for reason, f in proxy.get("by_reason", {}).items()),
               *(row(f"dwell < {name.removesuffix('s')} s", f) for name, f in fixed.items())]),
        *([Table(["evidence alone", "confirmed clicks", "the flags' ratio", "95% interval",
                  "fixed threshold at their rate", "its ratio", "95% interval"],
                 [[kind, f"{f['confirmed']:,}", _ratio(f["flags"]["ratio"]), ci(f["flags"]),
                   *(["-", "-", "-"] if f["matched_rate"] is None else
                     [f"dwell < {f['matched_rate']['threshold_s']:.2f} s", _ratio(f["matched_rate"]["ratio"]), ci(f["matched_rate"])])]
                  for kind, f in proxy["by_evidence"].items()],
                 caption="Each kind of evidence on its own. Where they disagree, trust the one dwell does not drive: "
                         "reading a page to its end takes time, so deep reads favor any dwell threshold.")]
          if proxy.get("by_evidence") else []),
    )


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def sequences_section(lengths: np.ndarray, day: dt.date, max_len: int) -> Section:
    p50, p90, p99 = (float(np.percentile(lengths, q)) for q in (50, 90, 99))
    capped = int((lengths >= max_len).sum())
    return _section(
        "sequences",
        Image(figures.length_distribution_png(lengths, max_len if lengths.max() >= max_len / 2 else None),
              alt=f"Histogram of per-user behavior sequence lengths as of {day}",
              caption=f"{len(lengths):,} users as of {day}, {int(lengths.sum()):,} behaviors; length p50 {p50:,.0f}, "
                      f"p90 {p90:,.0f}, p99 {p99:,.0f}, max {int(lengths.max()):,}; {capped:,} at the cap ({max_len:,})."),
    )


def bse_section(buckets: pd.DataFrame, day: dt.date, signatures: int, bits: int) -> Section:
    """`buckets`: occupied buckets per (version, user_id)."""
    capacity = signatures * 2**bits
    occupancy = {v: part["buckets"].to_numpy(dtype=float) / capacity for v, part in buckets.groupby("version", sort=True)}
    rows = [[v, int(len(o)), int(buckets.loc[buckets["version"] == v, "buckets"].sum()), percent(np.mean(o)),
             percent(np.mean(o >= 1.0))] for v, o in occupancy.items()]
    return _section(
        "bse",
        Image(figures.occupancy_png(occupancy), alt=f"Histogram of per-user BSE bucket occupancy as of {day}",
              caption=f"Per user as of {day}: occupied buckets out of {signatures} signatures x 2^{bits} codes = {capacity}, "
                      "one outline per embedding version."),
        Table(["embedding version", "users", "buckets", "mean occupancy", "users full"], rows),
    )


def model_label(version: ModelVersion, day: dt.date, newest: str | None) -> str:
    roles = [*version.aliases, *(["newest"] if version.version == newest else [])]
    label = f"v{version.version} {version.model}" + (f" ({', '.join(roles)})" if roles else "")
    trained = version.last_trained_date
    return label + (f" [trained through {trained}: {day} not held out]" if trained and trained >= day else "")


def training_section(histories: Mapping[str, pd.DataFrame], versions: Sequence[ModelVersion], labels: Mapping[str, str]) -> Section:
    rows = []
    for v in versions:
        history = histories[v.version]
        best = history.loc[history["valid_auc"].idxmax()] if history["valid_auc"].notna().any() else None
        rows.append([f"v{v.version}", v.model, v.data_range, int(len(history)),
                     None if best is None else int(best["epoch"]), None if best is None else float(best["valid_auc"])])
    if not any(len(h) for h in histories.values()):
        return Section("training", TITLES["training"], unavailable="no per-epoch metrics logged for " +
                       ", ".join(f"v{v.version}" for v in versions))
    return _section(
        "training",
        Image(figures.training_curves_png({labels[v.version]: histories[v.version] for v in versions}),
              alt="Training loss and validation AUC per epoch of the reported model versions",
              caption="Per epoch, from the MLflow run of each version; the registered weights are those of the best "
                      "validation epoch."),
        Table(["version", "model", "data range", "epochs", "best epoch", "best valid AUC"], rows),
    )


def _joined(predictions: Predictions, oracle: pd.DataFrame | None) -> pd.DataFrame | None:
    if oracle is None:
        return None
    return predictions.frame.merge(oracle, on=PREDICTION_KEYS, how="inner")


def model_sections(predictions: Mapping[str, Predictions], oracle: pd.DataFrame | None, oracle_reason: str | None,
                   day: dt.date) -> tuple[Section, Section]:
    """The ROC section and the AUC-vs-oracle section from each model's
    predictions on `day` (keyed by label) and the truth's click probabilities."""
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    rows, aucs, oracle_auc = [], {}, None
    for label, scored in predictions.items():
        frame = scored.frame
        labels, probabilities = frame["label"].to_numpy(), frame["probability"].to_numpy()
        model_auc = auc(labels, probabilities)
        curves[f"{label}: AUC {model_auc:.4f}" if model_auc is not None else label] = figures.roc_points(labels, probabilities)
        joined = _joined(scored, oracle)
        on_truth = orc = nightly = None
        if joined is not None and len(joined):
            on_truth = auc(joined["label"].to_numpy(), joined["probability"].to_numpy())
            orc = auc(joined["label"].to_numpy(), joined["click_prob"].to_numpy())
            nightly = auc(joined["label"].to_numpy(), joined["click_prob_nightly"].to_numpy())
            if oracle_auc is None and orc is not None:
                oracle_auc = orc
                curves[f"oracle: AUC {orc:.4f}"] = figures.roc_points(joined["label"].to_numpy(), joined["click_prob"].to_numpy())
        if model_auc is not None:
            aucs[label] = on_truth if on_truth is not None else model_auc
        rows.append([label, int(len(frame)), model_auc, gauc(frame["user_id"].to_numpy(), labels, probabilities),
                     logloss(labels, probabilities) if len(frame) else None,
                     None if joined is None else int(len(joined)), on_truth, orc,
                     None if not (on_truth and orc) else on_truth / orc, nightly,
                     None if not (on_truth and nightly) else on_truth / nightly])
    sources = "; ".join(f"{label}: {p.source}" for label, p in predictions.items())
    roc = _section(
        "roc",
        Image(figures.roc_png(curves), alt=f"ROC curves of the reported models on the examples of {day}",
              caption=f"Examples of {day} (gold/training_examples), labels of genuine clicks. Predictions: {sources}."
                      + ("" if oracle is not None else f" No oracle curve: {oracle_reason}.")),
    )
    table = Table(["model", "rows", "AUC", "GAUC", "logloss", "rows with truth", "AUC on them", "oracle AUC", "model / oracle",
                   "nightly oracle AUC", "model / nightly oracle"], rows)
    if not aucs:
        return roc, Section("oracle", TITLES["oracle"], unavailable="no model AUC (the day's examples hold one class only)")
    items: list[Image | Table | str] = [
        Image(figures.auc_vs_oracle_png(aucs, oracle_auc), alt=f"AUC of each model vs the oracle AUC on {day}",
              caption="Each model's AUC on the rows the truth covers, next to the AUC of the true click probabilities "
                      "(the best any model can reach on these rows). The nightly oracle knows only what the night before can: "
                      "the session's focus and the day's drift of interests averaged out." if oracle_auc is not None else
                      f"Each model's AUC on {day}; no oracle: {oracle_reason}."),
        table,
    ]
    return roc, _section("oracle", *items)


def scores_section(scores: pd.DataFrame, score_date: dt.date, night: dt.date) -> Section:
    """`scores`: score, candidate_source, model_version of the candidates of `score_date`."""
    by_source = {str(s): part["score"].to_numpy(dtype=float) for s, part in scores.groupby("candidate_source", sort=True)}
    versions = ", ".join(f"v{v}" for v in sorted(scores["model_version"].dropna().unique()))
    values = scores["score"].to_numpy(dtype=float)
    rows = [[s, int(len(v)), float(v.mean()), float(np.median(v)), float(v.min()), float(v.max())] for s, v in by_source.items()]
    when = "scored by this night" if score_date > night else f"the latest there are: none yet for {night + dt.timedelta(days=1)}"
    return _section(
        "scores",
        Image(figures.score_distribution_png(by_source), alt=f"Histogram of the CTR scores of {score_date} by candidate source",
              caption=f"{len(values):,} candidates of {score_date} ({when}) scored by {versions or 'an unknown version'}: "
                      f"mean {values.mean():.4f}, min {values.min():.4f}, max {values.max():.4f}."),
        Table(["candidate source", "candidates", "mean", "median", "min", "max"], rows),
    )


def details_text(details: object, limit: int = 300) -> str:
    """A validation's details (JSON text) on one line, cut at `limit` characters."""
    if details is None:
        return ""
    try:
        text = json.dumps(json.loads(details) if isinstance(details, str) else details, separators=(", ", ": "), default=str)
    except (TypeError, ValueError):
        text = str(details)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def quality_section(results: pd.DataFrame, day: dt.date) -> Section:
    """`results`: ops/quality rows of `day` (table, date, success, evaluated, failed, bands, details); failures first."""
    ordered = results.assign(passed=results["success"].fillna(False).astype(bool)).sort_values(["passed", "table"])
    rows = [[r.table, bool(r.passed), None if pd.isna(r.evaluated) else int(r.evaluated),
             None if pd.isna(r.failed) else int(r.failed), getattr(r, "bands", "") or "", details_text(r.details)]
            for r in ordered.itertuples()]
    failing = int((~ordered["passed"]).sum())
    summary = (f"{len(rows) - failing} of {len(rows)} validations of {day} passed"
               + (f"; {failing} failed (highlighted)." if failing else "."))
    return _section(
        "quality",
        summary,
        Table(["table", "success", "expectations evaluated", "failed", "volume and rate bands of the newest date", "details"], rows,
              bad_rows=frozenset(i for i, r in enumerate(rows) if not r[1])),
    )


def timings_section(runs: pd.DataFrame, day: dt.date) -> Section:
    """`runs`: the ledger rows of the night (stage, dates, started_at, finished_at), oldest first."""
    origin = runs["started_at"].min()
    start = ((runs["started_at"] - origin).dt.total_seconds()).tolist()
    duration = ((runs["finished_at"] - runs["started_at"]).dt.total_seconds()).tolist()
    wall = (runs["finished_at"].max() - origin).total_seconds()
    rows = [[r.stage, f"{min(r.dates)}..{max(r.dates)}" if len(r.dates) > 1 else str(r.dates[0]),
             r.started_at.strftime("%H:%M:%S"), r.finished_at.strftime("%H:%M:%S"), float(d)]
            for r, d in zip(runs.itertuples(), duration, strict=True)]
    return _section(
        "timings",
        Image(figures.stage_timeline_png(runs["stage"].tolist(), start, duration),
              alt=f"Timeline of the stage runs of the night of {day}",
              caption=f"{len(runs)} finished runs of the night of {day} (ops/runs, times UTC; training and the gate "
                      f"write no ledger row): {sum(duration):,.0f} s of stage time over {wall:,.0f} s from the first "
                      "start to the last finish."),
        Table(["stage", "dates", "started", "finished", "seconds"], rows),
    )
