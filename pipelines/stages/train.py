"""Train: a CTR model on Ray Train from gold/training_examples, logged and registered in MLflow.

Runs on a local Ray instance by default, on RAY_ADDRESS (or ray.address) when
given. The last date is held out for validation when there are several (early
stopping on its AUC). In BSE mode every example of the range must carry
bucket sums under one embedding version, which the model records and scores
from. The night trains night.model on the labelled days before it, when
night.train_cadence says it trains (NothingToDo otherwise).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import uuid
from pathlib import Path

import ray
import ray.data
import ray.train
from ray.data.dataset import MaterializedDataset
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer

from pipelines.bse.projection import stored_projection
from pipelines.config import Settings
from pipelines.ctr.artifacts import save_model
from pipelines.ctr.base import ModelConfig
from pipelines.ctr.batches import EXAMPLE_COLUMNS, shape_for
from pipelines.ctr.cadence import NoTraining, nightly_training_range
from pipelines.ctr.datasets import (
    arrow_bytes,
    bse_sums_version,
    example_files,
    held_in_object_store,
    training_split,
    user_split,
    vocabulary,
)
from pipelines.ctr.distributed import TrainLoop, load_checkpoint_state, train_worker
from pipelines.ctr.labels import model_label
from pipelines.ctr.registry import (
    LAKEHOUSE_TAG,
    RUN_TAG,
    log_and_register,
    model_versions,
    withdrawn_versions,
)
from pipelines.ctr.zoo import MODELS, build_model, model_class
from pipelines.errors import NothingToDo
from pipelines.lakehouse.files import delta_table, native_uri, partitions
from pipelines.lakehouse.ledger import Run, ledger_rows, now_utc, recorded_run
from pipelines.lakehouse.session import ray_runtime
from pipelines.lakehouse.tables import GOLD_TRAINING_EXAMPLES


def training_inputs_sha256(settings: Settings, label: str, start: dt.date, end: dt.date, examples_version: int,
                           night: dt.date | None) -> str:
    """What a model is a function of: the model, its examples (dates and the
    table's version), the training settings and the night it trained for."""
    inputs = {"model": label, "data_range": f"{start}..{end}", "examples_table_version": examples_version,
              "train": settings.train.model_dump(mode="json"), "night": night and night.isoformat()}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def train_night(settings: Settings, night: dt.date, model: str | None = None, bse: bool = False) -> dict[str, object]:
    """The night's model (night.model unless `model`) on the window of labelled
    days before `night`. A retry of a night whose training finished on the same
    inputs (killed after its ledger row, before Airflow heard of it) returns
    that run's figures, with "reused": its run, instead of training it again."""
    labelled = [dt.date.fromisoformat(p["event_date"]) for p in partitions(settings.lakehouse, GOLD_TRAINING_EXAMPLES)]
    window = nightly_training_range(night, settings.night, sorted(labelled))
    if isinstance(window, NoTraining):
        raise NothingToDo(window.reason)
    model = model or settings.night.model
    examples_version = delta_table(settings.lakehouse, GOLD_TRAINING_EXAMPLES).version()
    inputs = training_inputs_sha256(settings, model_label(model, bse), window.first, window.last, examples_version, night)
    registered = {v.version for v in model_versions(settings)}
    for row in sorted(ledger_rows(settings.lakehouse, "train").to_pylist(), key=lambda r: r["finished_at"], reverse=True):
        figures = json.loads(row["figures"])
        if figures.get("inputs_sha256") == inputs and figures.get("version") in registered:
            return {**figures, "reused": row["run_id"]}
    return train_model(settings, window.first, window.last, model, bse, night=night)


def train_model(settings: Settings, start: dt.date, end: dt.date, model: str, bse: bool = False,
                kill_worker_mid_epoch: int | None = None, night: dt.date | None = None) -> dict[str, object]:
    lakehouse = settings.lakehouse
    run = Run("train", [night or end], now_utc())
    with recorded_run(lakehouse, run) as figures:
        figures["healed"] = withdrawn_versions(settings)
        train = settings.train
        (train_first, train_last), held_out = training_split(start, end)
        vocab = vocabulary(lakehouse, end, settings.train.min_item_impressions)
        kind = model_class(model)
        if bse and not kind.has_bse_mode:
            raise ValueError(f"{model} has no BSE mode (models that have one: "
                             f"{', '.join(name for name, cls in MODELS.items() if cls.has_bse_mode)})")
        projection = stored_projection(lakehouse, settings.bse) if kind.uses_projection else None
        config = ModelConfig.for_vocabulary(model, vocab.sizes(), settings, bse_mode=bse)
        shape = shape_for(config, settings.examples.train_len, settings.examples.short_len)
        columns = EXAMPLE_COLUMNS + (["long_bse"] if bse else [])
        train_files = example_files(lakehouse, train_first, train_last)
        bse_version = bse_sums_version(lakehouse, example_files(lakehouse, start, end), projection.sha256) if bse else None
        ray_runtime(settings.ray)
        # Blocks in the order of their files: the same examples train the same
        # weights (on one worker; several take blocks as each asks for them).
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        train_ds = ray.data.read_parquet(train_files.uris, columns=columns)
        train_bytes = arrow_bytes(train_files.uris, columns)
        if held_out:
            valid_files = example_files(lakehouse, *held_out)
            valid_ds = ray.data.read_parquet(valid_files.uris, columns=columns)
            valid_bytes = arrow_bytes(valid_files.uris, columns)
        else:
            valid_files = train_files
            share = train.validation_share
            valid_ds = train_ds.map_batches(lambda t: user_split(t, share, True), batch_format="pyarrow")
            train_ds = train_ds.map_batches(lambda t: user_split(t, share, False), batch_format="pyarrow")
            valid_bytes = round(train_bytes * share)
            train_bytes -= valid_bytes
        # Every epoch reads both again; every worker reads all the validation rows (on a
        # cluster, streaming them took more seconds than the epoch's training).
        budget = train.object_store_share * ray.cluster_resources().get("object_store_memory", 0)
        valid_ds, train_ds = held_in_object_store([(valid_ds, valid_bytes), (train_ds, train_bytes)], budget)

        run_name = f"{config.label}-{end}-{uuid.uuid4().hex[:8]}"
        loop = TrainLoop(
            model=config, vocab=vocab, shape=shape, projection=None if projection is None else projection.matrix,
            epochs=train.epochs, patience=train.patience, batch_size=train.batch_size, learning_rate=train.learning_rate,
            seed=train.seed, progress_every=train.progress_every, position_dropout=train.position_dropout,
            threads=max(1, round(train.cpus_per_worker)), run_folder=f"{lakehouse}/_train/{run_name}",
            kill_worker_mid_epoch=kill_worker_mid_epoch,
        )
        trainer = TorchTrainer(
            train_worker,
            train_loop_config=loop.as_loop_config(),
            datasets={"train": train_ds, "valid": valid_ds},
            dataset_config=ray.train.DataConfig(datasets_to_split=["train"],
                                                execution_options=ray.train.DataConfig.default_ingest_options()),
            scaling_config=ScalingConfig(num_workers=train.workers, use_gpu=False, resources_per_worker={"CPU": train.cpus_per_worker},
                                         placement_strategy=train.placement_strategy),
            run_config=RunConfig(
                # pyarrow's filesystems (Ray Train's storage) know s3://, not Hadoop's s3a://.
                storage_path=native_uri(f"{lakehouse}/_train"), name=run_name,
                failure_config=FailureConfig(max_failures=train.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=2),
            ),
        )
        result = trainer.fit()
        state = load_checkpoint_state(result.checkpoint)
        progress = state["progress"]
        best = build_model(config, None if projection is None else projection.matrix)
        best.load_state_dict(state["best_model"])
        metadata = {
            "data_range": f"{start}..{end}", "train_dates": f"{train_first}..{train_last}",
            "valid_dates": f"{held_out[0]}..{held_out[1]}" if held_out else f"{train.validation_share:.0%} of users",
            "examples_table_version": train_files.version,
            "projection_sha256": projection.sha256 if projection else None,
            "bse_embedding_version": bse_version,
        }
        with tempfile.TemporaryDirectory() as folder:
            save_model(Path(folder), best, vocab, metadata)
            registered = log_and_register(
                settings, run_name,
                params={**train.model_dump(), "model": model, "bse_mode": bse, "embedding_dim": config.embedding_dim,
                        "long_len": shape.long_len, "short_len": shape.short_len, **metadata,
                        "valid_table_version": valid_files.version},
                history=progress["history"],
                final_metrics={"best_valid_auc": progress["best_auc"], "best_epoch": progress["best_epoch"]},
                model_folder=Path(folder),
                tags={"model": model, "bse_mode": str(bse).lower(), "data_range": metadata["data_range"],
                      RUN_TAG: run.run_id, LAKEHOUSE_TAG: lakehouse,
                      **({"night": night.isoformat()} if night else {}),
                      **({"bse_embedding_version": bse_version} if bse_version else {})},
            )
        history = progress["history"]
        figures.update({
            "model": config.label,
            "version": registered["version"],
            **({"bse_embedding_version": bse_version} if bse else {}),
            "run_id": registered["run_id"],
            "epochs": len(history),
            "restarted_at_epoch": max((int(h["start_epoch"]) for h in history), default=0),
            "train_losses": [round(float(h["train_loss"]), 5) for h in history],
            # The batches rank 0 trained on, every epoch, and Adam's own count of the
            # steps it took: equal when a resumed run carried its optimizer over.
            "train_steps": sum(int(h["train_batches"]) for h in history),
            "optimizer_steps": int(max((float(s["step"]) for s in state["optimizer"]["state"].values()), default=0)),
            "best_epoch": progress["best_epoch"],
            "best_valid_auc": round(progress["best_auc"], 5),
            "train_examples": int(history[-1]["train_examples"]) * train.workers if history else 0,
            "examples_table_version": train_files.version,
            "inputs_sha256": training_inputs_sha256(settings, config.label, start, end, train_files.version, night),
            "held_in_object_store": [name for name, d in (("valid", valid_ds), ("train", train_ds))
                                     if isinstance(d, MaterializedDataset)],
        })
    return figures
