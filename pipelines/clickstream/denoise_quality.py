"""How well the noise flags tell noise from interest, against fixed dwell thresholds.

Against the generator's truth: two baselines flag every click whose dwell is
under a fixed threshold: 5 s, and the best threshold of a grid (1 to 10 s in
half seconds) chosen with hindsight, i.e. tuned on the very truth it is
scored against. The flags are not tuned on the truth, so beating the
hindsight threshold is the bar.

Where a source has no truth (real logs), against evidence of interest: a
click is confirmed when the same user later acts on the same item or comes
back to it in another session, or when the click's page was read to the end
(scroll depth, where the source logs it). A flagger that catches noise flags confirmed
clicks less often than clicks at large: the ratio of its two flag rates is
1.0 for a random flagger and lower the better it separates. A flagger that
flags more clicks can look better or worse for that alone, so the flags are
compared with the fixed threshold that flags as many clicks as they do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable

import numpy as np
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.denoise import NoiseReason
from pipelines.config import CleanSettings

# Truth label of each kind of fake interest -> the flag that should catch it.
TRUTH_KIND = {"accidental": NoiseReason.SHORT_DWELL, "human_burst": NoiseReason.BURST, "bot": NoiseReason.BOT}
BASELINE_DWELL_MS = 5_000
_STEP_MS = 500
HINDSIGHT_GRID_MS = tuple(range(1_000, 10_001, _STEP_MS))

# (noise_reason, truth label, dwell step: dwell_ms // 500, capped; None without dwell, clicks)
Counts = list[tuple[str | None, str, int | None, int]]


def confusion_counts(flags: DataFrame, truth: DataFrame) -> Counts:
    """Clicks present in both, counted by flag, truth label and half-second of dwell.

    `flags`: event_id, noise_reason, dwell_ms of silver clicks; `truth`: event_id,
    label. Aggregated in Spark: the driver receives a few hundred rows at most.
    """
    cap = HINDSIGHT_GRID_MS[-1] // _STEP_MS
    step = F.least(F.floor(F.col("dwell_ms") / _STEP_MS), F.lit(cap)).cast("int")
    rows = (
        flags.join(truth, "event_id")
        .groupBy("noise_reason", "label", step.alias("step"))
        .agg(F.count("*").alias("clicks"))
        .collect()
    )
    return [(r["noise_reason"], r["label"], r["step"], r["clicks"]) for r in rows]


def scores(true_positives: int, flagged: int, actual: int) -> dict[str, float | int]:
    precision = true_positives / flagged if flagged else 0.0
    recall = true_positives / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "flagged": flagged, "actual": actual}


def flag_quality(counts: Counts) -> dict[str, object]:
    """Precision, recall and F1 of the flags, overall and per noise kind, of the
    5-second baseline and of the hindsight-tuned fixed threshold."""

    def total(predicate: Callable[[str | None, str, int | None], bool]) -> int:
        return sum(n for reason, label, step, n in counts if predicate(reason, label, step))

    def is_noise(label: str) -> bool:
        return label != "genuine"

    actual = total(lambda r, lab, s: is_noise(lab))

    def threshold_scores(threshold_ms: int) -> dict[str, float | int]:
        under = threshold_ms // _STEP_MS
        return scores(
            total(lambda r, lab, s: s is not None and s < under and is_noise(lab)),
            total(lambda r, lab, s: s is not None and s < under),
            actual,
        )

    overall = scores(
        total(lambda r, lab, s: r is not None and is_noise(lab)), total(lambda r, lab, s: r is not None), actual
    )
    per_kind = {
        kind: scores(
            total(lambda r, lab, s, k=kind, f=flag: r == f and lab == k),
            total(lambda r, lab, s, f=flag: r == f),
            total(lambda r, lab, s, k=kind: lab == k),
        )
        for kind, flag in TRUTH_KIND.items()
    }
    baseline = threshold_scores(BASELINE_DWELL_MS)
    best_ms, hindsight = best_threshold(threshold_scores, HINDSIGHT_GRID_MS)
    return {
        "clicks": total(lambda r, lab, s: True),
        "overall": overall,
        "per_kind": per_kind,
        "baseline_fixed_5s": baseline,
        "hindsight_fixed": {"threshold_s": best_ms / 1000, **hindsight},
        "f1_gain_over_baseline": round(overall["f1"] - baseline["f1"], 4),
        "f1_gain_over_hindsight": round(overall["f1"] - hindsight["f1"], 4),
    }


def best_threshold(
    score_of: Callable[[int], dict[str, float | int]], grid: Iterable[int]
) -> tuple[int, dict[str, float | int]]:
    """The threshold of `grid` with the highest F1 (the lowest on ties), and its scores."""
    return max(((t, score_of(t)) for t in grid), key=lambda pair: (pair[1]["f1"], -pair[0]))


# Where a source has no truth: a click is confirmed by what the same user did
# with the same item afterwards. These actions, or a click in another session.
CONFIRMING_ACTIONS = ("cart", "fav", "buy")
# Each kind of evidence -> the column of confirmed_clicks that says a click has it.
EVIDENCE_KINDS = {"action": "acted", "deep_read": "deep_read", "return": "returned"}
# The fixed thresholds of the proxy's table, and the grid their interpolation runs on.
PROXY_TABLE_MS = tuple(range(1_000, 10_001, 1_000))


def confirmed_clicks(events: DataFrame, first: dt.date, last: dt.date, confirmation_days: int,
                     deep_read_scroll_pct: float) -> DataFrame:
    """The clicks of `first`..`last` (event_id, user_id, dwell_ms, noise_reason)
    with `evidence`, the strongest of how the same user showed an interest in the same item -
    "buy", "cart" or "fav" within `confirmation_days` after it (the
    strongest), "deep_read" (the click's page scrolled to
    `deep_read_scroll_pct` percent), "return" (a click in another session
    within those days), null when nothing did - and each kind on its own
    (EVIDENCE_KINDS: `acted`, `deep_read`, `returned`). `events`: silver rows
    of the dates and the `confirmation_days` after them. A deep read is
    judged by scroll depth alone, never by dwell: the flaggers it scores are
    dwell's (though reading to the end takes time: see proxy_figures)."""
    clicks = events.where((F.col("event_type") == "click") & F.col("event_date").between(F.lit(first), F.lit(last))).select(
        "event_id", "user_id", "item_id", "ts", "session_id", "dwell_ms", "noise_reason",
        F.coalesce(F.col("scroll_pct") >= deep_read_scroll_pct, F.lit(False)).alias("deep_read"))
    # The later side under names of its own: the join reads one table twice.
    later = events.where(F.col("event_type").isin("click", *CONFIRMING_ACTIONS)).select(
        F.col("user_id").alias("_user"), F.col("item_id").alias("_item"), F.col("ts").alias("_ts"),
        F.col("session_id").alias("_session"), F.col("event_type").alias("_type"))
    within = confirmation_days * 86_400_000
    joined = clicks.join(
        later,
        (F.col("user_id") == F.col("_user")) & (F.col("item_id") == F.col("_item"))
        & (F.col("_ts") > F.col("ts")) & (F.col("_ts") <= F.col("ts") + within),
        "left",
    )
    # The strongest evidence wins: an action over a deep read over a return; a
    # click in the same session is none.
    returned = (F.col("_type") == "click") & (F.col("_session") != F.col("session_id"))
    strength = (F.when(F.col("_type") == "buy", 5).when(F.col("_type") == "cart", 4).when(F.col("_type") == "fav", 3)
                .when(F.col("deep_read"), 2).when(returned, 1))
    strongest = F.max(strength)
    # A CASE, not element_at(array, max(...)): Spark 4.0.x gave that one
    # different values under a filter or an aggregate above it than collected.
    evidence = (F.when(strongest == 5, "buy").when(strongest == 4, "cart").when(strongest == 3, "fav")
                .when(strongest == 2, "deep_read").when(strongest == 1, "return"))
    return joined.groupBy("event_id", "user_id", "dwell_ms", "noise_reason", "deep_read").agg(
        evidence.alias("evidence"), F.coalesce(F.max(F.col("_type").isin(*CONFIRMING_ACTIONS)), F.lit(False)).alias("acted"),
        F.coalesce(F.max(returned), F.lit(False)).alias("returned"))


def proxy_figures(events: DataFrame, first: dt.date, last: dt.date, rules: CleanSettings) -> dict[str, object]:
    """The flags of the clicks of `first`..`last` and the fixed dwell
    thresholds against the evidence of interest `events` (silver rows of those
    dates and the rules' confirmation_days after them) hold: the clicks by
    their strongest evidence, proxy_quality against any evidence,
    `by_reason`: each noise reason's rates, and `by_evidence`: proxy_quality
    against each kind alone, where the clicks have more than one.

    The kinds need not agree, and where they do not, the one tied to dwell
    by mechanics says less: reading a page to its end takes time, so a deep
    read confirms long dwells whatever the intent, and any dwell threshold
    looks good against it; a return or an action is not timed."""
    clicks = confirmed_clicks(events, first, last, rules.confirmation_days, rules.deep_read_scroll_pct).persist()
    try:
        evidence = {r["evidence"] or "none": r["count"] for r in clicks.groupBy("evidence").count().collect()}
        having = clicks.agg(*(F.count_if(F.col(column)).alias(kind) for kind, column in EVIDENCE_KINDS.items())).first()
        quality = proxy_quality(proxy_counts(clicks))
        kinds = [kind for kind in EVIDENCE_KINDS if having[kind]]
        # With one kind only, it alone is the whole figure.
        by_evidence = {kind: proxy_quality(proxy_counts(clicks, F.col(EVIDENCE_KINDS[kind])))
                       for kind in kinds} if len(kinds) > 1 else {}
        reasons = clicks.where(F.col("noise_reason").isNotNull()).groupBy("noise_reason").agg(
            F.count("*").alias("flagged"), F.count("evidence").alias("confirmed")).collect()
    finally:
        clicks.unpersist()
    return {"confirmation_days": rules.confirmation_days, "evidence": dict(sorted(evidence.items())), **quality,
            "by_reason": {r["noise_reason"]: _reason_rates(r["flagged"], r["confirmed"], quality["clicks"], quality["confirmed"])
                          for r in sorted(reasons, key=lambda r: r["noise_reason"])},
            "by_evidence": by_evidence}


def _reason_rates(flagged: int, flagged_confirmed: int, clicks: int, confirmed: int) -> dict[str, float | None]:
    """One noise reason's share of all and of confirmed clicks and their ratio
    (no interval): which of the flags a kind of evidence agrees with. Bots
    come back to what they clicked, so returns confirm them."""
    rate_all = flagged / clicks
    rate_confirmed = flagged_confirmed / confirmed if confirmed else None
    return {"rate_all": _round(rate_all), "rate_confirmed": None if rate_confirmed is None else _round(rate_confirmed),
            "ratio": None if rate_confirmed is None else _round(rate_confirmed / rate_all)}


@dataclasses.dataclass(frozen=True)
class ProxyCounts:
    """Per user (one row each): clicks, confirmed clicks, flagged clicks and
    confirmed flagged clicks, and for each fixed threshold of `thresholds_ms`
    the clicks under it and the confirmed ones (columns in that order). A
    user's clicks go together, so the bootstrap resamples users."""

    clicks: np.ndarray  # (users,)
    confirmed: np.ndarray
    flagged: np.ndarray
    flagged_confirmed: np.ndarray
    under: np.ndarray  # (users, thresholds)
    under_confirmed: np.ndarray
    thresholds_ms: tuple[int, ...]


def proxy_counts(clicks: DataFrame, confirming: Column | None = None,
                 thresholds_ms: tuple[int, ...] = HINDSIGHT_GRID_MS) -> ProxyCounts:
    """ProxyCounts of confirmed_clicks' rows, aggregated per user in Spark; a
    click is confirmed where `confirming` holds (default: any evidence)."""
    confirmed = (F.col("evidence").isNotNull() if confirming is None else confirming).cast("long")
    flagged = F.col("noise_reason").isNotNull().cast("long")
    unders = [F.coalesce((F.col("dwell_ms") < t).cast("long"), F.lit(0)) for t in thresholds_ms]
    # Columnar (Arrow) to the driver: one row a user, so a night's many users
    # do not become as many Python rows.
    per_user = clicks.groupBy("user_id").agg(
        F.count("*").alias("clicks"), F.sum(confirmed).alias("confirmed"), F.sum(flagged).alias("flagged"),
        F.sum(flagged * confirmed).alias("flagged_confirmed"),
        *(F.sum(u).alias(f"under_{i}") for i, u in enumerate(unders)),
        *(F.sum(u * confirmed).alias(f"under_confirmed_{i}") for i, u in enumerate(unders)),
    ).toArrow()

    def column(name: str) -> np.ndarray:
        return per_user.column(name).to_numpy().astype(np.int64)

    def matrix(prefix: str) -> np.ndarray:
        return np.stack([column(f"{prefix}_{i}") for i in range(len(thresholds_ms))], axis=1)

    return ProxyCounts(column("clicks"), column("confirmed"), column("flagged"), column("flagged_confirmed"),
                       matrix("under"), matrix("under_confirmed"), thresholds_ms)


def matched_threshold(rate: float, thresholds_ms: tuple[int, ...], rates: np.ndarray,
                      confirmed_rates: np.ndarray) -> tuple[float, float] | None:
    """(threshold in ms, its flag rate on confirmed clicks) of the fixed
    threshold that flags `rate` of all clicks, interpolated linearly between
    the grid's thresholds (from 0 ms, which flags none); None past the grid's last."""
    grid = np.concatenate([[0.0], np.asarray(thresholds_ms, float)])
    rates, confirmed_rates = np.concatenate([[0.0], rates]), np.concatenate([[0.0], confirmed_rates])
    above = np.nonzero(rates >= rate)[0]
    if not len(above):
        return None
    hi = int(above[0])
    if hi == 0 or rates[hi] == rates[hi - 1]:
        return float(grid[hi]), float(confirmed_rates[hi])
    share = (rate - rates[hi - 1]) / (rates[hi] - rates[hi - 1])
    return (float(grid[hi - 1] + share * (grid[hi] - grid[hi - 1])),
            float(confirmed_rates[hi - 1] + share * (confirmed_rates[hi] - confirmed_rates[hi - 1])))


def _rates(weights: np.ndarray, counts: ProxyCounts) -> dict[str, np.ndarray]:
    """Each resample's (rows of `weights`: how often each user is drawn) flag
    rates on all and on confirmed clicks, of the flags and of each threshold."""
    clicks, confirmed = weights @ counts.clicks, weights @ counts.confirmed
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "flags_all": (weights @ counts.flagged) / clicks, "flags_confirmed": (weights @ counts.flagged_confirmed) / confirmed,
            "fixed_all": (weights @ counts.under) / clicks[:, None], "fixed_confirmed": (weights @ counts.under_confirmed) / confirmed[:, None],
        }


def proxy_quality(counts: ProxyCounts, resamples: int = 1_000, seed: int = 0, table_ms: tuple[int, ...] = PROXY_TABLE_MS) -> dict[str, object]:
    """The flags and each fixed threshold of `table_ms` (on `counts`' grid):
    the share of all clicks and of confirmed clicks they flag, and the ratio
    of the two (1.0: a random flagger; lower: the flagged clicks are confirmed
    less often than clicks are, i.e. they are noise more often), with 95%
    bootstrap intervals over users; and the flags against the fixed threshold
    that flags as many clicks (interpolated on the grid): the difference of
    the ratios, below 0 where the flags separate better."""
    users = len(counts.clicks)
    point = _rates(np.ones((1, users)), counts)
    rng = np.random.default_rng(seed)
    # Resampled in chunks of at most about 10M user weights (80 MB): a night of
    # many users is bootstrapped in bounded memory.
    chunk = max(1, min(100, 10_000_000 // max(users, 1)))
    draws = [_rates(rng.multinomial(users, np.full(users, 1 / users), size=min(chunk, resamples - done)).astype(float), counts)
             for done in range(0, resamples, chunk)] if users else []
    boot = {k: np.concatenate([d[k] for d in draws]) for k in point} if draws else {}

    def interval(values: np.ndarray) -> list[float] | None:
        values = values[np.isfinite(values)]
        return [round(float(v), 4) for v in np.percentile(values, [2.5, 97.5])] if len(values) else None

    def matched(rates: dict[str, np.ndarray], row: int) -> tuple[float, float, float] | None:
        """(threshold s, its ratio, the flags' ratio minus it) of resample `row`."""
        flag_rate = float(rates["flags_all"][row])
        found = None if not np.isfinite(flag_rate) else matched_threshold(
            flag_rate, counts.thresholds_ms, rates["fixed_all"][row], rates["fixed_confirmed"][row])
        if found is None or flag_rate == 0:
            return None
        threshold_ms, confirmed_rate = found
        flags_ratio = float(rates["flags_confirmed"][row]) / flag_rate
        return threshold_ms / 1000, confirmed_rate / flag_rate, flags_ratio - confirmed_rate / flag_rate

    def flagger(all_key: str, confirmed_key: str, column: int | None = None) -> dict[str, object]:
        """Rates and ratio of the flags (`column` None) or of a fixed threshold's column, with the ratio's interval."""
        def of(rates: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            flagged_all, flagged_confirmed = rates[all_key], rates[confirmed_key]
            return (flagged_all, flagged_confirmed) if column is None else (flagged_all[:, column], flagged_confirmed[:, column])

        flagged_all, flagged_confirmed = of(point)
        with np.errstate(divide="ignore", invalid="ignore"):
            figures = {"rate_all": _round(flagged_all[0]), "rate_confirmed": _round(flagged_confirmed[0]),
                       "ratio": _round(flagged_confirmed[0] / flagged_all[0])}
            if boot:
                resampled_all, resampled_confirmed = of(boot)
                figures["ratio_ci"] = interval(resampled_confirmed / resampled_all)
        return figures

    flags = flagger("flags_all", "flags_confirmed")
    fixed = {f"{ms / 1000:g}s": flagger("fixed_all", "fixed_confirmed", counts.thresholds_ms.index(ms)) for ms in table_ms}
    at_rate = matched(point, 0)
    comparison = None
    if at_rate is not None:
        resampled = [m for m in (matched(boot, r) for r in range(len(boot.get("flags_all", [])))) if m is not None]
        comparison = {"threshold_s": round(at_rate[0], 3), "ratio": _round(at_rate[1]), "flags_minus_fixed": _round(at_rate[2]),
                      "ratio_ci": interval(np.array([m[1] for m in resampled])),
                      "flags_minus_fixed_ci": interval(np.array([m[2] for m in resampled]))}
    return {"users": users, "clicks": int(counts.clicks.sum()), "confirmed": int(counts.confirmed.sum()),
            "resamples": resamples, "flags": flags, "fixed": fixed, "matched_rate": comparison}


def _round(value: float) -> float | None:
    return round(float(value), 4) if np.isfinite(value) else None
