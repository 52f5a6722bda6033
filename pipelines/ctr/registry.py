"""MLflow tracking and Model Registry for the CTR models.

A training run logs its parameters, per-epoch metrics, data range, the Delta
table versions it read, and its model folder (safetensors + JSON, never a
pickled object). Versions are registered under one name; promotion is an
alias (`champion` by default). The tracking store defaults to a SQLite
database beside a local lakehouse and follows MLFLOW_TRACKING_URI when set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipelines.config import Settings
from pipelines.ctr.labels import model_label
from pipelines.errors import MissingInputError
from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.files import native_uri
from pipelines.lakehouse.ledger import ledger_rows


def tracking_uri(settings: Settings) -> str:
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if settings.registry.tracking_uri:
        return settings.registry.tracking_uri
    if "://" in settings.lakehouse:
        raise MissingInputError("registry.tracking_uri: required for a lakehouse on an object store")
    return f"sqlite:///{Path(settings.lakehouse).parent / 'mlflow.db'}"


def artifact_root(settings: Settings) -> str:
    if "://" in settings.lakehouse:
        # MLflow's artifact stores know s3://, not Hadoop's s3a://.
        return native_uri(f"{settings.lakehouse.rstrip('/')}/_mlflow")
    return (Path(settings.lakehouse).parent / "mlflow-artifacts").as_uri()


@contextlib.contextmanager
def client(settings: Settings) -> Iterator[Any]:
    """An MlflowClient on the configured store, with the experiment created."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(settings)
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI, which would pin
    # this process and every job it launches to this store: restore it after.
    exported = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        if mlflow.get_experiment_by_name(settings.registry.experiment) is None:
            mlflow.create_experiment(settings.registry.experiment, artifact_location=artifact_root(settings))
        mlflow.set_experiment(settings.registry.experiment)
        yield MlflowClient(tracking_uri=uri, registry_uri=uri)
    finally:
        for key, value in exported.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def log_and_register(
    settings: Settings, run_name: str, params: dict[str, Any], history: list[dict[str, Any]],
    final_metrics: dict[str, float], model_folder: Path, tags: dict[str, str],
) -> dict[str, str]:
    """Log a training run and register its model folder as a new version."""
    import mlflow

    with client(settings) as mlflow_client, mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        for row in history:
            mlflow.log_metrics({k: float(v) for k, v in row.items() if isinstance(v, int | float) and k != "epoch"},
                               step=int(row["epoch"]))
        mlflow.log_metrics({k: float(v) for k, v in final_metrics.items()})
        mlflow.set_tags(tags)
        mlflow.log_artifacts(str(model_folder), artifact_path="model")
        name = settings.registry.model_name
        with contextlib.suppress(Exception):  # already registered
            mlflow_client.create_registered_model(name)
        with commit_point("register model"):
            version = mlflow_client.create_model_version(
                name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
            )
    return {"run_id": run.info.run_id, "version": str(version.version)}


def reader(settings: Settings) -> Any | None:
    """An MlflowClient that reads the registry, None where no local registry
    exists yet (nothing was ever registered): reading creates none."""
    from mlflow import MlflowClient

    uri = tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return None
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def champion_version(settings: Settings) -> str | None:
    """The version the champion alias points to; None when no model is
    registered or the alias is unset. Any other registry error propagates:
    read as "no champion", it would promote the next model unconditionally."""
    from mlflow.exceptions import MlflowException

    mlflow_client = reader(settings)
    if mlflow_client is None:
        return None
    try:
        return str(mlflow_client.get_model_version_by_alias(settings.registry.model_name, settings.registry.champion_alias).version)
    except MlflowException as exc:
        if _no_such_alias(exc):
            return None
        raise


def _no_such_alias(exc: Exception) -> bool:
    """MLflow's answer for an unregistered model, or a registered one without the alias."""
    code = getattr(exc, "error_code", "")
    return code == "RESOURCE_DOES_NOT_EXIST" or (code == "INVALID_PARAMETER_VALUE" and "alias" in str(exc) and "not found" in str(exc))


def promote(settings: Settings, version: str) -> None:
    with client(settings) as mlflow_client:
        mlflow_client.get_model_version(settings.registry.model_name, version)  # a clear error for an unknown version
        mlflow_client.set_registered_model_alias(settings.registry.model_name, settings.registry.champion_alias, version)


@dataclasses.dataclass(frozen=True)
class ModelVersion:
    """A registered version as the gate, the report and `models list` read it."""

    version: str
    run_id: str
    # Its label: the model's name, "-bse" for an SDIM trained on bucket sums.
    model: str
    data_range: str | None
    aliases: tuple[str, ...]
    # The night whose run trained it (`seqlake train --night D`), None for a manual run.
    night: str | None = None
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)
    created_ms: int | None = None

    @property
    def last_trained_date(self) -> dt.date | None:
        """The last date of the model's training data (its data_range's end)."""
        if not self.data_range:
            return None
        try:
            return dt.date.fromisoformat(self.data_range.split("..")[-1])
        except ValueError:
            return None

    def as_json(self) -> dict[str, Any]:
        return {"version": self.version, "aliases": list(self.aliases), "created": self.created_ms, "run_id": self.run_id,
                **self.tags}


def model_versions(settings: Settings) -> list[ModelVersion]:
    """Every registered version, newest first, with its tags and aliases; none
    before a model was ever registered."""
    from mlflow.exceptions import MlflowException

    mlflow_client = reader(settings)
    if mlflow_client is None:
        return []
    name = settings.registry.model_name
    try:
        aliases = mlflow_client.get_registered_model(name).aliases
    except MlflowException as exc:
        if _no_such_alias(exc):
            return []
        raise
    found = mlflow_client.search_model_versions(f"name='{name}'", order_by=["version_number DESC"])
    return [
        ModelVersion(
            str(v.version), v.run_id, model_label(v.tags.get("model", "?"), v.tags.get("bse_mode") == "true"),
            v.tags.get("data_range"), tuple(sorted(a for a, target in aliases.items() if str(target) == str(v.version))),
            v.tags.get("night"), dict(v.tags), v.creation_timestamp,
        )
        for v in found
    ]


# The tags by which a version names the train run that registered it, and that
# run's lakehouse (one registry may serve several): its ledger says whether it finished.
RUN_TAG, LAKEHOUSE_TAG = "seqlake_run", "seqlake_lakehouse"


def _of_unfinished_run(settings: Settings, tags: Mapping[str, str], finished_runs: set[str]) -> bool:
    """Whether `tags` (a version's or an MLflow run's) name a train run of this
    lakehouse that never recorded its ledger row (`finished_runs`: the
    ledger's train runs): a run killed after it registered, since the train
    stage holds the lakehouse's writer lease while it runs."""
    return tags.get(LAKEHOUSE_TAG) == settings.lakehouse and bool(tags.get(RUN_TAG)) and tags[RUN_TAG] not in finished_runs


def _finished_train_runs(lakehouse: str) -> set[str]:
    """The run ids of the train runs that the lakehouse's ledger records as finished."""
    return set(ledger_rows(lakehouse, "train").column("run_id").to_pylist())


def published_versions(settings: Settings) -> list[ModelVersion]:
    """model_versions but those that train runs of this lakehouse registered
    and never finished: what the gate and the report may name."""
    finished = _finished_train_runs(settings.lakehouse)
    return [v for v in model_versions(settings) if not _of_unfinished_run(settings, v.tags, finished)]


def withdrawn_versions(settings: Settings) -> list[str]:
    """Withdraw what train runs of this lakehouse that never finished left in
    the registry: their versions are deleted ("model vN by run R"), except one
    that holds an alias (someone promoted it since: it serves, and is "kept"),
    and their MLflow runs, left RUNNING by the killed process, end as KILLED
    ("mlflow run M by run R")."""
    mlflow_client = reader(settings)
    if mlflow_client is None:
        return []
    finished = _finished_train_runs(settings.lakehouse)
    outcomes = []
    for version in model_versions(settings):
        if not _of_unfinished_run(settings, version.tags, finished):
            continue
        named = f"model v{version.version} by run {version.tags[RUN_TAG]}"
        if version.aliases:
            outcomes.append(f"{named} kept: it holds {', '.join(version.aliases)}")
            continue
        mlflow_client.delete_model_version(settings.registry.model_name, version.version)
        outcomes.append(named)
    experiment = mlflow_client.get_experiment_by_name(settings.registry.experiment)
    running = mlflow_client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'") if experiment else []
    for found in running:
        if _of_unfinished_run(settings, found.data.tags, finished):
            mlflow_client.set_terminated(found.info.run_id, status="KILLED")
            outcomes.append(f"mlflow run {found.info.run_id} by run {found.data.tags[RUN_TAG]}")
    return outcomes


def trained_on_night(versions: Sequence[ModelVersion], night: dt.date) -> ModelVersion | None:
    """The newest of `versions` that the night of `night` trained and registered."""
    return next((v for v in versions if v.night == night.isoformat()), None)


def checked_version(version: str) -> str:
    """`version` when it is a registry version number (MLflow's are 1, 2, ...):
    it names folders and URIs, so nothing else gets through."""
    if not str(version).isdigit():
        raise ValueError(f"model version {version!r}: a version number (1, 2, ...)")
    return str(version)


def downloaded_model(settings: Settings, version: str) -> Path:
    """A local folder with the version's model files (model.safetensors, config.json)."""
    import mlflow

    version = checked_version(version)
    # Its progress bar would be noise in a batch job's log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with client(settings):
        target = Path(tempfile.mkdtemp(prefix=f"seqlake-model-{version}-"))
        try:
            return Path(mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{settings.registry.model_name}/{version}", dst_path=str(target)
            ))
        except Exception as exc:
            raise MissingInputError(f"model version {version!r} of {settings.registry.model_name!r}: {exc}") from exc


def model_tags(settings: Settings, version: str) -> dict[str, str]:
    """The tags a version was registered with (model, bse_mode, data_range, ...)."""
    with client(settings) as mlflow_client:
        return dict(mlflow_client.get_model_version(settings.registry.model_name, version).tags)


def scoring_embedding_version(settings: Settings, version: str, tags: dict[str, str] | None = None) -> str:
    """The item embeddings whose BSE bucket sums model `version` scores from: a
    BSE-mode SDIM's are those its training sums were hashed with (recorded at
    training), any other model's its own, as `models export` writes them."""
    from pipelines.ctr.embeddings import embedding_version

    tags = model_tags(settings, version) if tags is None else tags
    return tags.get("bse_embedding_version") or embedding_version(settings.registry.model_name, version)


def current_embedding_version(settings: Settings) -> str:
    """The item embeddings the night hashes with: those the champion scores
    from once a model has been promoted, the bootstrap version before."""
    champion = champion_version(settings)
    return scoring_embedding_version(settings, champion) if champion else settings.bse.bootstrap_version


def embeddings_trained_through(settings: Settings, version: str) -> dt.date | None:
    """The last labelled date the model behind embedding `version` saw (its data
    range's end, the held-out day included); None for the bootstrap embeddings,
    which saw no label. An embedding version no registered model exported is an error."""
    from pipelines.ctr.embeddings import embedding_version

    if version == settings.bse.bootstrap_version:
        return None
    for registered in model_versions(settings):
        if embedding_version(settings.registry.model_name, registered.version) == version:
            return registered.last_trained_date
    raise MissingInputError(f"embedding version {version!r}: no registered model exported it, so what it was trained on is unknown")
