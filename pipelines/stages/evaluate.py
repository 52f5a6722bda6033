"""Measurements of a stage against what it did not shape: the denoising flags
against the generator's truth, or - on any source - against what users did
afterwards (the proxy), and BSE scoring against end-to-end scoring."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.clickstream.denoise_quality import confusion_counts, flag_quality, proxy_figures
from pipelines.config import Settings
from pipelines.ctr.artifacts import ModelFiles
from pipelines.ctr.registry import downloaded_model, scoring_embedding_version
from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import delta_rows, delta_table
from pipelines.lakehouse.publications import published_dataset, published_dates, rows_filter
from pipelines.lakehouse.tables import (
    GOLD_CANDIDATES,
    GOLD_USER_SEQUENCES,
    SILVER_EVENTS,
)
from pipelines.lakehouse.writes import read_date_partitions, read_table
from pipelines.scoring.batch_scoring import bse_parity
from pipelines.synth.truth import truth_clicks


def bse_parity_of_day(settings: Settings, day: dt.date, version: str) -> dict[str, object]:
    """bse_parity of the candidates of `day` under model `version`, against the
    histories as the night before published them."""
    candidates = delta_rows(delta_table(settings.lakehouse, GOLD_CANDIDATES),
                            partitions=[("score_date", "=", day.isoformat())])
    as_of = day - dt.timedelta(days=1)
    (published,) = published_dates(settings.lakehouse, GOLD_USER_SEQUENCES, [as_of]) or [None]
    if published is None:
        raise MissingInputError(f"{GOLD_USER_SEQUENCES.name} as of {as_of} was never published")
    lengths = published_dataset(settings.lakehouse, GOLD_USER_SEQUENCES, published).to_table(
        filter=rows_filter(GOLD_USER_SEQUENCES, published), columns=["user_id", "length"])
    figures = bse_parity(candidates, lengths, ModelFiles.read(downloaded_model(settings, version)), version, settings.examples.train_len,
                         settings.examples.short_len, scoring_embedding_version(settings, version))
    return {"date": day.isoformat(), **figures}


def denoise_quality(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    flags = (
        read_date_partitions(spark, settings.lakehouse, SILVER_EVENTS, day)
        .where(F.col("event_type") == "click")
        .select("event_id", "noise_reason", "dwell_ms")
    )
    return {"date": day.isoformat(), **flag_quality(confusion_counts(flags, truth_clicks(spark, settings.truth, day)))}


def denoise_proxy(spark: SparkSession, settings: Settings, first: dt.date, last: dt.date,
                  source: str | None = None) -> dict[str, object]:
    """The flags of the clicks of `first`..`last` (of `source`, or every
    source) and the fixed dwell thresholds against the evidence of interest
    that the days after each click hold (denoise_quality.confirmed_clicks):
    for sources without a truth."""
    rules = settings.clean
    events = read_table(spark, settings.lakehouse, SILVER_EVENTS).where(
        F.col("event_date").between(F.lit(first), F.lit(last + dt.timedelta(days=rules.confirmation_days))))
    if source is not None:
        events = events.where(F.col("source") == source)
    figures = proxy_figures(events, first, last, rules)
    if not figures["clicks"]:
        raise MissingInputError(f"no clicks{f' of {source}' if source else ''} in silver from {first} to {last}")
    return {"date": first.isoformat() if first == last else f"{first}..{last}", "source": source, **figures}


def evaluation_lines(stage: str, figures: Mapping[str, Any]) -> list[str]:
    """What `seqlake evaluate STAGE` prints of its figures (without --json)."""
    if stage == "model":
        return [f"model {figures['version']} ({figures['model']}) on {figures['date']}: AUC {figures['auc']}, "
                f"GAUC {figures['gauc']}, logloss {figures['logloss']}, oracle AUC {figures['oracle_auc']}, "
                f"model / oracle {figures['model_over_oracle']}, nightly oracle AUC {figures['nightly_oracle_auc']}, "
                f"model / nightly oracle {figures['model_over_nightly_oracle']}"]
    if stage == "bse":
        return [f"BSE vs end to end on the candidates of {figures['date']} (v{figures['version']}, sums under "
                f"{figures['embedding_version']}): max |diff| {figures['max_abs_diff']:.2e} over {figures['candidates']:,} rows; "
                f"{figures['users_past_long_side']} users past the long side of {figures['long_side']}: "
                f"max |diff| {figures['max_abs_diff_past_long_side']}"]
    if "matched_rate" in figures:
        return proxy_lines(figures)
    o, b, h = figures["overall"], figures["baseline_fixed_5s"], figures["hindsight_fixed"]
    return [
        f"denoise {figures['date']}: {figures['clicks']} clicks",
        f"  flags                         precision={o['precision']} recall={o['recall']} f1={o['f1']}",
        f"  dwell < 5 s                   precision={b['precision']} recall={b['recall']} f1={b['f1']}",
        f"  dwell < {h['threshold_s']} s (hindsight best) precision={h['precision']} recall={h['recall']} f1={h['f1']}",
        *(f"  {kind:<12} precision={s['precision']} recall={s['recall']} f1={s['f1']}" for kind, s in figures["per_kind"].items()),
    ]


def proxy_lines(figures: Mapping[str, Any]) -> list[str]:
    """`evaluate denoise --proxy`'s table: flag rates on all and on confirmed clicks."""
    def row(name: str, f: Mapping[str, Any]) -> str:
        ci = f.get("ratio_ci") or ["-", "-"]  # none for a reason's own rates
        return f"  {name:<14} all {f['rate_all']}  confirmed {f['rate_confirmed']}  ratio {f['ratio']} [{ci[0]}, {ci[1]}]"

    def at_rate(matched: Mapping[str, Any] | None) -> str:
        return ("no fixed threshold of the grid flags as many clicks" if matched is None else
                f"dwell < {matched['threshold_s']} s has ratio {matched['ratio']} {matched['ratio_ci']}; "
                f"flags minus it {matched['flags_minus_fixed']} {matched['flags_minus_fixed_ci']}")

    return [
        f"denoise proxy {figures['date']} ({figures['source'] or 'every source'}): {figures['clicks']} clicks of "
        f"{figures['users']} users, {figures['confirmed']} confirmed within {figures['confirmation_days']} days {figures['evidence']}",
        "  flag rate on all clicks, on confirmed clicks, and confirmed / all (1.0: a random flagger; lower is better)",
        row("flags", figures["flags"]),
        *(row(f"  {reason}", f) for reason, f in figures["by_reason"].items()),
        *(row(f"dwell < {name}", f) for name, f in figures["fixed"].items()),
        "  at the flags' rate: " + at_rate(figures["matched_rate"]),
        *(f"  {kind} alone ({f['confirmed']} clicks): flags ratio {f['flags']['ratio']} {f['flags'].get('ratio_ci')}; "
          f"at their rate: {at_rate(f['matched_rate'])}" for kind, f in figures["by_evidence"].items()),
    ]
