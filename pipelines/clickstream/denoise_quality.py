"""How well the noise flags match the generator's truth, against a fixed-threshold baseline."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.denoise import NoiseReason

# Truth label of each kind of fake interest -> the flag that should catch it.
TRUTH_KIND = {"accidental": NoiseReason.SHORT_DWELL, "human_burst": NoiseReason.BURST, "bot": NoiseReason.BOT}
BASELINE_DWELL_MS = 5_000


def confusion_counts(flags: DataFrame, truth: DataFrame) -> list[tuple[str | None, str, bool, int]]:
    """(noise_reason, truth label, baseline flag, clicks) for clicks present in both.

    `flags`: event_id, noise_reason, dwell_ms of silver clicks; `truth`: event_id,
    label. Aggregated in Spark: the driver receives at most a few dozen rows.
    """
    joined = flags.join(truth, "event_id")
    baseline = F.coalesce(F.col("dwell_ms") < BASELINE_DWELL_MS, F.lit(False))
    rows = (
        joined.groupBy("noise_reason", "label", baseline.alias("baseline"))
        .agg(F.count("*").alias("clicks"))
        .collect()
    )
    return [(r["noise_reason"], r["label"], r["baseline"], r["clicks"]) for r in rows]


def flag_quality(counts: list[tuple[str | None, str, bool, int]]) -> dict[str, object]:
    """Precision, recall and F1 of the flags, overall and per noise kind, and of the
    baseline (dwell under 5 s) overall, from `confusion_counts`."""

    def scores(tp: int, flagged: int, actual: int) -> dict[str, float]:
        precision = tp / flagged if flagged else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                "flagged": flagged, "actual": actual}

    def total(predicate) -> int:
        return sum(n for reason, label, base, n in counts if predicate(reason, label, base))

    noise = lambda label: label != "genuine"  # noqa: E731
    overall = scores(
        total(lambda r, lab, b: r is not None and noise(lab)),
        total(lambda r, lab, b: r is not None),
        total(lambda r, lab, b: noise(lab)),
    )
    per_kind = {
        kind: scores(
            total(lambda r, lab, b, k=kind, f=flag: r == f and lab == k),
            total(lambda r, lab, b, f=flag: r == f),
            total(lambda r, lab, b, k=kind: lab == k),
        )
        for kind, flag in TRUTH_KIND.items()
    }
    baseline = scores(
        total(lambda r, lab, b: b and noise(lab)),
        total(lambda r, lab, b: b),
        total(lambda r, lab, b: noise(lab)),
    )
    return {
        "clicks": total(lambda r, lab, b: True),
        "overall": overall,
        "per_kind": per_kind,
        "baseline_fixed_5s": baseline,
        "f1_gain_over_baseline": round(overall["f1"] - baseline["f1"], 4),
    }
