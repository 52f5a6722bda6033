"""Report: the operators' morning report of a night, one self-contained HTML file.

The night's last step. Reads the night's tables with delta-rs and the MLflow
registry with its client (no Spark session, no Ray) and writes
`<reports>/report-D.html`: plots as base64 PNG inside the page, nothing
external, readable from a file or an object store's console without a
server. A section whose input does not exist yet (before the first model, a
date not run, no data-quality table) says so instead of failing the report; a
section that fails says why, and the stage still writes the rest. Rerunning a
date replaces its file.
"""

from __future__ import annotations

import datetime as dt
import time
import traceback
from collections.abc import Callable, Sequence

from pipelines.config import Settings
from pipelines.ctr.registry import ModelVersion
from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import write_atomically
from pipelines.night import NIGHT
from pipelines.reporting import inputs, sections
from pipelines.reporting.html import Section, render_report
from pipelines.reporting.sections import TITLES
from pipelines.synth.oracle import impression_click_probabilities


def report_uri(settings: Settings, day: dt.date) -> str:
    return f"{settings.reports.rstrip('/')}/report-{day.isoformat()}.html"


def stage_last_dates(night: dt.date) -> dict[str, dt.date]:
    """The newest date of each stage's ledger row in the night of `night`: the
    night's date, or the day after for the steps that prepare and score it."""
    return {step.command: step.day_of(night) for step in NIGHT}


def write_report(settings: Settings, day: dt.date, versions: Sequence[str] = (),
                 log: Callable[[str], None] = print) -> dict[str, object]:
    started = time.perf_counter()
    built = report_sections(settings, day, versions, log)
    page = render_report(day, built, generated_at=dt.datetime.now(dt.UTC))
    uri = report_uri(settings, day)
    write_atomically(uri, page.encode("utf-8"))
    return {
        "date": day.isoformat(),
        "report": uri,
        "bytes": len(page.encode("utf-8")),
        "sections": len(built),
        "available": sum(s.ok for s in built),
        "not_available": [s.key for s in built if s.unavailable is not None],
        "failed": [s.key for s in built if s.failed is not None],
        "seconds": round(time.perf_counter() - started, 2),
    }


def report_sections(settings: Settings, day: dt.date, versions: Sequence[str],
                    log: Callable[[str], None] = print) -> list[Section]:
    """Every section of the report of `day`, in order; none raises."""
    lakehouse, built = settings.lakehouse, []

    def add(keys: tuple[str, ...], build: Callable[[], Section | tuple[Section, ...]]) -> None:
        began = time.perf_counter()
        made = _guarded(keys, build)
        built.extend(made)
        for section in made:
            state = "ok" if section.ok else (f"not available: {section.unavailable}" if section.failed is None
                                            else f"failed: {section.failed}")
            log(f"  {section.key:<10} {time.perf_counter() - began:6.2f} s  {state}")

    add(("dwell",), lambda: sections.dwell_section(inputs.click_dwell(lakehouse, day), day))
    add(("noise",), lambda: sections.noise_section(inputs.noise_counts(lakehouse, day)))
    add(("proxy",), lambda: sections.proxy_section(inputs.night_proxy(lakehouse, day)))
    add(("sequences",), lambda: sections.sequences_section(inputs.sequence_lengths(lakehouse, day), day, settings.sequences.max_len))
    add(("bse",), lambda: sections.bse_section(inputs.occupied_buckets(lakehouse, day), day, settings.bse.signatures, settings.bse.bits))

    models: dict[str, object] = {}

    def chosen() -> list[ModelVersion]:
        if "versions" not in models:
            try:
                every = inputs.registered_versions(settings)
                models["versions"] = inputs.report_versions(every, day, settings.registry.champion_alias, versions)
                newest = inputs.newest_version(every, day)
                models["newest"] = newest.version if newest else None
            except Exception as exc:  # once: the three model sections say the same
                models["versions"] = exc
        if isinstance(models["versions"], Exception):
            raise models["versions"]
        return models["versions"]

    def labels() -> dict[str, str]:
        return {v.version: sections.model_label(v, day, models.get("newest")) for v in chosen()}

    add(("training",), lambda: sections.training_section(inputs.metric_histories(settings, chosen()), chosen(), labels()))
    add(("roc", "oracle"), lambda: _model_sections(settings, day, chosen(), labels()))
    score_days = list(dict.fromkeys([stage_last_dates(day).get("score", day), day]))
    add(("scores",), lambda: sections.scores_section(*inputs.day_scores(lakehouse, score_days), day))
    add(("quality",), lambda: sections.quality_section(inputs.quality_results(lakehouse, day), day))
    add(("timings",), lambda: sections.timings_section(inputs.night_runs(lakehouse, day, stage_last_dates(day)), day))
    return built


def _model_sections(settings: Settings, day: dt.date, versions: list[ModelVersion],
                    labels: dict[str, str]) -> tuple[Section, Section]:
    predictions = {labels[v.version]: inputs.day_predictions(settings, v, day) for v in versions}
    try:
        oracle, reason = impression_click_probabilities(settings.truth, day), None
    except MissingInputError as exc:
        oracle, reason = None, str(exc)
    return sections.model_sections(predictions, oracle, reason, day)


def _guarded(keys: tuple[str, ...], build: Callable[[], Section | tuple[Section, ...]]) -> list[Section]:
    """The sections `build` makes; where its input is missing, or it fails, one
    placeholder per key saying why (a failure's traceback goes to stderr)."""
    try:
        made = build()
        return list(made) if isinstance(made, tuple) else [made]
    except MissingInputError as exc:
        return [Section(k, TITLES[k], unavailable=str(exc)) for k in keys]
    except Exception as exc:
        traceback.print_exc()
        return [Section(k, TITLES[k], failed=f"{type(exc).__name__}: {exc}") for k in keys]

