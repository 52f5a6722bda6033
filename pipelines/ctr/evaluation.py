"""A registered model scored on one day's examples: AUC, GAUC, logloss,
calibration, and where the generator's truth exists, the oracle AUC of the
true click probabilities on the same rows (the best any model can reach)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pandas as pd
import pyarrow as pa
from deltalake import write_deltalake

from pipelines.config import Settings
from pipelines.ctr.artifacts import load_model
from pipelines.ctr.base import CtrModel
from pipelines.ctr.batches import EXAMPLE_COLUMNS, BatchShape, Vocabulary, shape_for, to_batch
from pipelines.ctr.datasets import example_batches, example_files
from pipelines.ctr.metrics import auc, click_metrics
from pipelines.ctr.registry import downloaded_model
from pipelines.ctr.training import predictions
from pipelines.errors import MissingInputError
from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.files import native_uri
from pipelines.lakehouse.tables import OPS_EVALUATIONS, table_uri
from pipelines.synth.oracle import PREDICTION_KEYS, impression_click_probabilities


def scored_examples(model: CtrModel, vocab: Vocabulary, shape: BatchShape, settings: Settings, day: dt.date) -> pd.DataFrame:
    """One row per example of `day`: its keys, label and the model's click probability."""
    columns = EXAMPLE_COLUMNS + ["impression_id"] + (["long_bse"] if shape.sdim_inputs == "bse" else [])
    scored = []
    for rows in example_batches(example_files(settings.lakehouse, day, day), settings.train.batch_size * 4, columns):
        _, labels, probabilities = predictions(model, [to_batch(rows, vocab, shape)])
        scored.append(pa.table({k: rows.column(k) for k in PREDICTION_KEYS}).to_pandas().assign(label=labels, probability=probabilities))
    return pd.concat(scored, ignore_index=True) if scored else pd.DataFrame(columns=[*PREDICTION_KEYS, "label", "probability"])


def model_quality(settings: Settings, version: str, day: dt.date) -> dict[str, object]:
    model, vocab, metadata = load_model(downloaded_model(settings, version))
    shape = shape_for(model.config, settings.examples.train_len, settings.examples.short_len)
    scored = scored_examples(model, vocab, shape, settings, day)
    figures: dict[str, object] = {
        "version": version, "model": model.config.label, "date": day.isoformat(),
        "trained_on": metadata.get("data_range"),
        **click_metrics(scored["user_id"].to_numpy(), scored["label"].to_numpy(), scored["probability"].to_numpy()),
    }
    figures.update(oracle_comparison(scored, settings.truth, day))
    write_evaluation(settings.lakehouse, version, str(figures["model"]), day, scored)
    return figures



def write_evaluation(lakehouse: str, version: str, model: str, day: dt.date, scored: pd.DataFrame) -> None:
    """Replace the (day, version) predictions in ops/evaluations, one commit: the
    report draws its ROC curves from them without loading a model."""
    n = len(scored)
    rows = pa.table({
        "eval_date": pa.array([day] * n, pa.date32()),
        "model_version": pa.array([version] * n, pa.string()),
        "model": pa.array([model] * n, pa.string()),
        "user_id": pa.array(scored["user_id"].to_numpy(), pa.int64()),
        "impression_id": pa.array(scored["impression_id"].astype(object).to_numpy(), pa.string()),
        "item_id": pa.array(scored["item_id"].to_numpy(), pa.int64()),
        "label": pa.array(scored["label"].to_numpy().round().astype("int32"), pa.int32()),
        "probability": pa.array(scored["probability"].to_numpy().astype("float32"), pa.float32()),
        "evaluated_at": pa.array([dt.datetime.now(dt.UTC).replace(tzinfo=None)] * n, pa.timestamp("us")),
    }, schema=OPS_EVALUATIONS.schema)
    with commit_point(f"replace {OPS_EVALUATIONS.name}"):
        write_deltalake(
            native_uri(table_uri(lakehouse, OPS_EVALUATIONS)), rows, mode="overwrite", partition_by=["eval_date"],
            predicate=f"eval_date = '{day.isoformat()}' AND model_version = '{version}'",
        )


def oracle_comparison(scored: pd.DataFrame, truth: str, day: dt.date) -> dict[str, object]:
    """The model's AUC against two oracles' on the rows the truth covers: the
    true click probabilities (full), and the probabilities given only what the
    night before can know (nightly: the session's focus and the day's interest
    step marginalized out), the bound for a model that scores with features as of D-1."""
    try:
        impressions = impression_click_probabilities(truth, day)
    except MissingInputError:
        return {"oracle_auc": None, "model_over_oracle": None, "nightly_oracle_auc": None, "model_over_nightly_oracle": None}
    joined = scored.merge(impressions, on=PREDICTION_KEYS)
    labels = joined["label"].to_numpy()

    def auc_of(column: str) -> float | None:
        return round(auc(labels, joined[column].to_numpy()), 5) if len(joined) else None

    def ratio(model: float | None, oracle: float | None) -> float | None:
        return None if not (oracle and model) else round(model / oracle, 4)

    model, oracle, nightly = auc_of("probability"), auc_of("click_prob"), auc_of("click_prob_nightly")
    return {
        "oracle_rows": int(len(joined)), "model_auc_on_oracle_rows": model,
        "oracle_auc": oracle, "model_over_oracle": ratio(model, oracle),
        "nightly_oracle_auc": nightly, "model_over_nightly_oracle": ratio(model, nightly),
    }


@dataclasses.dataclass(frozen=True)
class Contender:
    """A model at the gate: its AUC on the gate day (None: it could not be
    measured) and the dates it was trained on (its data range, "A..B")."""

    version: str
    auc: float | None
    trained_on: str | None = None

    @classmethod
    def of(cls, quality: dict[str, object]) -> Contender:
        """From model_quality's figures."""
        auc_ = quality.get("auc")
        return cls(str(quality["version"]), None if auc_ is None else float(auc_), quality.get("trained_on"))  # type: ignore[arg-type]

    def trained_on_day(self, day: dt.date) -> bool:
        if not self.trained_on:
            return False
        first, _, last = self.trained_on.partition("..")
        return dt.date.fromisoformat(first) <= day <= dt.date.fromisoformat(last or first)


@dataclasses.dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def promotion_decision(candidate: Contender, champion: Contender | None, day: dt.date, margin: float) -> Decision:
    """Promote the candidate only on evidence: an AUC measured on `day`, which
    neither model trained on, above the champion's by `margin` (or no champion
    at all). Anything less keeps the champion, with the reason."""
    def measured(c: Contender) -> bool:
        return c.auc is not None and not math.isnan(c.auc)

    for contender, role in ((candidate, "candidate"), (champion, "champion")):
        if contender is not None and contender.trained_on_day(day):
            return Decision(False, f"the {role} v{contender.version} was trained on {day} ({contender.trained_on}): "
                                   "no held-out comparison on that day")
    if not measured(candidate):
        return Decision(False, f"the candidate v{candidate.version} has no AUC on {day}")
    if champion is None:
        return Decision(True, f"no champion yet: v{candidate.version} (AUC {candidate.auc:.4f}) becomes the first")
    if not measured(champion):
        return Decision(False, f"the champion v{champion.version} has no AUC on {day}: nothing to compare with")
    assert candidate.auc is not None and champion.auc is not None
    gain = candidate.auc - champion.auc
    if gain >= margin:
        return Decision(True, f"AUC {candidate.auc:.4f} beats the champion's {champion.auc:.4f} by {gain:+.4f} >= {margin}")
    return Decision(False, f"AUC {candidate.auc:.4f} vs the champion's {champion.auc:.4f}: {gain:+.4f} < margin {margin}")
