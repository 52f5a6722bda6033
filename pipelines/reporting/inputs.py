"""What the report reads, with delta-rs and the MLflow client: no Spark session.

Every reader reads one date's partition (or a few dates), only the columns it
plots, and raises MissingInputError with a short reason when its input does
not exist yet (a table never written, a date not run, no model registered);
the report shows that reason instead of the section. Nothing here writes: the
MLflow client is opened read-only (no experiment is created), and a local
SQLite store that does not exist is not created.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from pipelines.config import Settings
from pipelines.ctr.registry import ModelVersion, published_versions, reader, trained_on_night
from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import delta_rows, delta_table
from pipelines.lakehouse.ledger import night_figures
from pipelines.lakehouse.tables import (
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    OPS_EVALUATIONS,
    OPS_QUALITY,
    OPS_RUNS,
    SCORES_CTR,
    SILVER_EVENTS,
    SILVER_NOISE_METRICS,
    TableSpec,
)
from pipelines.synth.oracle import PREDICTION_KEYS

QUALITY_COLUMNS = ["table", "date", "success", "evaluated", "failed"]
# The details of a validation (JSON text), under the first of these names the table has.
QUALITY_DETAILS = ("details", "failed_expectations", "outcomes")
GENUINE = "genuine"


def existing_table(lakehouse: str, spec: TableSpec) -> DeltaTable:
    """The table; MissingInputError (a section that says why) when it does not exist yet."""
    try:
        return delta_table(lakehouse, spec)
    except TableNotFoundError:
        raise MissingInputError(f"{spec.name} does not exist yet") from None


def read_rows(lakehouse: str, spec: TableSpec, columns: Sequence[str], filters: Sequence[tuple] = (),
              what: str = "") -> pa.Table:
    """The `columns` of `spec`'s rows matching `filters` (partition filters prune
    files); MissingInputError when the table or the rows are not there."""
    table = existing_table(lakehouse, spec)
    missing = set(columns) - set(table.schema().to_arrow().names)
    if missing:
        raise MissingInputError(f"{spec.name} has no column {', '.join(sorted(missing))}")
    rows = delta_rows(table, columns=list(columns), filters=list(filters) or None)
    if rows.num_rows == 0:
        raise MissingInputError(f"{spec.name} has no rows {what or _describe(filters)}")
    return rows


def _describe(filters: Sequence[tuple]) -> str:
    return "for " + " and ".join(f"{c} {op} {v}" for c, op, v in filters) if filters else "yet"


def click_dwell(lakehouse: str, day: dt.date) -> pd.DataFrame:
    """dwell_ms and noise_reason ("genuine" for unflagged) of the clicks of `day` in silver/events."""
    rows = read_rows(lakehouse, SILVER_EVENTS, ["dwell_ms", "noise_reason"],
                     [("event_date", "=", day), ("event_type", "=", "click")], f"of clicks on {day}")
    frame = rows.to_pandas()
    frame["noise_reason"] = frame["noise_reason"].fillna(GENUINE)
    return frame


def noise_counts(lakehouse: str, day: dt.date, days: int = 30) -> pd.DataFrame:
    """Clicks per event date (index) and noise reason (columns, "genuine" first),
    over the `days` dates up to `day` that silver/noise_metrics holds."""
    first = day - dt.timedelta(days=days - 1)
    rows = read_rows(lakehouse, SILVER_NOISE_METRICS, ["event_date", "noise_reason", "events"],
                     [("event_date", ">=", first), ("event_date", "<=", day), ("event_type", "=", "click")],
                     f"of clicks from {first} to {day}")
    frame = rows.to_pandas()
    frame["noise_reason"] = frame["noise_reason"].fillna(GENUINE)
    table = frame.pivot_table(index="event_date", columns="noise_reason", values="events", aggfunc="sum", fill_value=0)
    if day not in set(table.index):
        raise MissingInputError(f"{SILVER_NOISE_METRICS.name} has no clicks for {day}")
    ordered = [GENUINE] * (GENUINE in table.columns) + sorted(c for c in table.columns if c != GENUINE)
    return table[ordered].sort_index()


def night_proxy(lakehouse: str, day: dt.date) -> dict:
    """The proxy figures of the clean run of the night of `day` (its ledger row)."""
    figures = night_figures(lakehouse, "clean", day)
    if figures is None:
        raise MissingInputError(f"no finished clean run of the night of {day}")
    proxy = figures.get("proxy")
    if not proxy or not proxy.get("confirmed"):
        raise MissingInputError(f"the clean run of {day} found no evidence of interest after its clicks "
                                "(no action, return or scroll depth in the source)")
    return proxy


def sequence_lengths(lakehouse: str, day: dt.date) -> np.ndarray:
    rows = read_rows(lakehouse, GOLD_USER_SEQUENCES, ["length"], [("as_of_date", "=", day)])
    return rows.column("length").to_numpy(zero_copy_only=False)


def occupied_buckets(lakehouse: str, day: dt.date) -> pd.DataFrame:
    """Occupied (hash function, code) buckets per user and embedding version as of
    `day` (columns version, user_id, buckets); the vectors are not read."""
    rows = read_rows(lakehouse, GOLD_USER_BSE, ["user_id", "version", "count"],
                     [("as_of_date", "=", day), ("count", ">", 0)])
    return rows.to_pandas().groupby(["version", "user_id"]).size().rename("buckets").reset_index()


def day_scores(lakehouse: str, days: Sequence[dt.date]) -> tuple[pd.DataFrame, dt.date]:
    """The scores of the first of `days` that scores/ctr holds, and that date."""
    table = existing_table(lakehouse, SCORES_CTR)
    for day in days:
        rows = delta_rows(table, columns=["score", "candidate_source", "model_version"], filters=[("score_date", "=", day)])
        if rows.num_rows:
            return rows.to_pandas(), day
    raise MissingInputError(f"{SCORES_CTR.name} has no scores for {' or '.join(str(d) for d in days)}")


def quality_results(lakehouse: str, day: dt.date) -> pd.DataFrame:
    """The data-quality validations of `day` (ops/quality): table, date, success,
    evaluated, failed, details (JSON text or None) and bands (the volume and
    rate bands the newest date was held to, with what it had, one line each);
    the newest per table when the table has a `validated_at` column, else the
    last row read."""
    names = set(existing_table(lakehouse, OPS_QUALITY).schema().to_arrow().names)
    details = next((c for c in QUALITY_DETAILS if c in names), None)
    order = ["validated_at"] if "validated_at" in names else []
    outcomes = ["outcomes"] if "outcomes" in names and details != "outcomes" else []
    columns = [*QUALITY_COLUMNS, *([details] if details else []), *outcomes, *order]
    frame = read_rows(lakehouse, OPS_QUALITY, columns, [("date", "=", day)], f"for {day}").to_pandas()
    frame = frame.rename(columns={details: "details"}) if details else frame.assign(details=None)
    source = frame["outcomes"] if outcomes else frame["details"] if details == "outcomes" else pd.Series([None] * len(frame))
    frame = frame.assign(bands=[band_lines(text) for text in source]).drop(columns=outcomes)
    if order:
        frame = frame.sort_values(order, kind="stable")
    return frame.drop_duplicates(["table", "date"], keep="last").reset_index(drop=True)


# The expectations that hold the newest date to a band from the dates before it (pipelines.quality.suites).
BAND_EXPECTATIONS = ("expect_column_sum_to_be_between", "expect_column_rate_to_be_between")


def band_lines(outcomes: str | None) -> str:
    """Each band of a validation's outcomes (JSON text) as "band: what the date had", one a line."""
    if not outcomes:
        return ""
    lines = []
    for outcome in json.loads(outcomes):
        if outcome.get("type") in BAND_EXPECTATIONS:
            observed = outcome.get("observed")
            had = "none" if observed is None else f"{observed:,.4g}" if isinstance(observed, float) else f"{observed:,}" if isinstance(observed, int) else json.dumps(observed, default=str)
            lines.append(f"{'ok' if outcome.get('success') else 'FAIL'} {outcome.get('text')}: observed {had}")
    return "\n".join(lines)


def night_runs(lakehouse: str, night: dt.date, last_dates: Mapping[str, dt.date]) -> pd.DataFrame:
    """The ledger rows of the night of `night`: of each stage in `last_dates`,
    the runs whose newest date is the one given (a night rewrites a look-back
    window ending at its date; it scores the next day), oldest first."""
    frame = read_rows(lakehouse, OPS_RUNS, ["stage", "dates", "started_at", "finished_at"]).to_pandas()
    ends = frame["dates"].map(lambda dates: max(dates) if len(dates) else None)
    runs = frame[[last_dates.get(stage) == end for stage, end in zip(frame["stage"], ends, strict=True)]]
    if runs.empty:
        raise MissingInputError(f"{OPS_RUNS.name} has no finished run of the night of {night}")
    return runs.sort_values("started_at").reset_index(drop=True)


# --- models: the MLflow registry, read-only --------------------------------------------------


def _mlflow_client(settings: Settings):
    client = reader(settings)
    if client is None:
        raise MissingInputError("no model registry yet (no model was ever trained)")
    return client


def registered_versions(settings: Settings) -> list[ModelVersion]:
    """Every version of the registered model, newest first, but those of train
    runs that never finished (killed after registering: nobody published them)."""
    _mlflow_client(settings)
    versions = published_versions(settings)
    if not versions:
        raise MissingInputError(f"no version of {settings.registry.model_name!r} registered yet")
    return versions


def report_versions(versions: Sequence[ModelVersion], day: dt.date, champion_alias: str,
                    wanted: Sequence[str] = ()) -> list[ModelVersion]:
    """The versions the report shows for the night of `day`: `wanted` when given,
    else the newest version that night trained (its `night` tag), or failing that
    the newest trained only on dates before `day` (so `day` is held out for it),
    and the champion (the alias's target now: the registry keeps no alias history)."""
    by_number = {v.version: v for v in versions}
    if wanted:
        unknown = [w for w in wanted if w not in by_number]
        if unknown:
            raise MissingInputError(f"no model version {', '.join(unknown)} in the registry")
        return [by_number[w] for w in wanted]
    chosen = [newest] if (newest := newest_version(versions, day)) else []
    chosen += [v for v in versions if champion_alias in v.aliases and v not in chosen]
    if not chosen:
        raise MissingInputError(f"no model trained on dates before {day} and no champion yet")
    return chosen


def newest_version(versions: Sequence[ModelVersion], day: dt.date) -> ModelVersion | None:
    """The newest version the night of `day` trained, else the newest trained on dates before `day`."""
    held_out = [v for v in versions if v.last_trained_date is not None and v.last_trained_date < day]
    return trained_on_night(versions, day) or (held_out or [None])[0]


def metric_histories(settings: Settings, versions: Sequence[ModelVersion],
                     metrics: Sequence[str] = ("train_loss", "valid_auc")) -> dict[str, pd.DataFrame]:
    """Per version: a frame of epoch and each metric (MLflow steps are epochs)."""
    client = _mlflow_client(settings)
    histories = {}
    for version in versions:
        frame = pd.DataFrame({"epoch": pd.Series(dtype="int64")})
        for metric in metrics:
            points = pd.DataFrame([(m.step, m.value) for m in client.get_metric_history(version.run_id, metric)],
                                  columns=["epoch", metric])
            frame = frame.merge(points.drop_duplicates("epoch", keep="last"), on="epoch", how="outer")
        histories[version.version] = frame.sort_values("epoch").reset_index(drop=True)
    return histories


# --- predictions on the held-out day, and the oracle -----------------------------------------


@dataclasses.dataclass(frozen=True)
class Predictions:
    frame: pd.DataFrame  # PREDICTION_KEYS, label, probability
    source: str          # where they come from, for the caption


def day_predictions(settings: Settings, version: ModelVersion, day: dt.date) -> Predictions:
    """The model's predictions on `day`'s examples, as its evaluation (`seqlake
    models gate` / `evaluate model`) persisted them in ops/evaluations."""
    try:
        rows = read_rows(settings.lakehouse, OPS_EVALUATIONS, [*PREDICTION_KEYS, "label", "probability"],
                         [("eval_date", "=", day), ("model_version", "=", version.version)])
    except MissingInputError as missing:
        raise MissingInputError(f"v{version.version} was not evaluated on {day}: {missing}") from None
    return Predictions(rows.to_pandas(), f"{OPS_EVALUATIONS.name}, all {rows.num_rows:,} examples")



