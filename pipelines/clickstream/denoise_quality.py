"""How well the noise flags match the generator's truth, against fixed dwell thresholds.

Two baselines flag every click whose dwell is under a fixed threshold: 5 s,
and the best threshold of a grid (1 to 10 s in half seconds) chosen with
hindsight, i.e. tuned on the very truth it is scored against. The flags are
not tuned on the truth, so beating the hindsight threshold is the bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.denoise import NoiseReason

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
