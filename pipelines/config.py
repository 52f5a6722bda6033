"""The one typed configuration of seqlake, on pydantic-settings.

Precedence, lowest first: the defaults below, the environment's TOML file
(`pipelines/conf/<env>.toml`, or the file named by SEQLAKE_CONFIG), SEQLAKE_*
environment variables (nested keys joined by `__`, e.g.
SEQLAKE_SPARK__MASTER), then `key=value` overrides from the command line
(`--set spark.master=local[2]`). Every value is validated when the settings
are built, so a bad one fails at start with a message naming its key and
value. Relative roots and paths resolve against one base: SEQLAKE_HOME when
set, else the repository root; never the process's working directory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
# The model zoo's names (pipelines.ctr.zoo maps each to its class and checks
# that the two agree): what night.model and the train command accept.
MODEL_NAMES = ("sdim", "din", "long_attention", "avg_pool", "sim", "eta", "twin")
CONF_DIR = Path(__file__).resolve().parent / "conf"
_REMOTE_SCHEMES = ("s3a://", "s3://", "abfss://", "gs://", "hdfs://")
_SPARK_MASTER = re.compile(r"^(local(\[(\*|\d+)(,\d+)?\])?|yarn|k8s://.+|spark://.+)$")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


def _across_keys(message: str) -> PydanticCustomError:
    """An error of a check across keys, whose message starts with the key it names."""
    return PydanticCustomError("across_keys", message)


def home() -> Path:
    """The base that relative roots and paths resolve against."""
    return Path(os.environ["SEQLAKE_HOME"]).expanduser().resolve() if os.environ.get("SEQLAKE_HOME") else REPO_ROOT


def _absolute(value: str) -> str:
    """Object-store URIs pass through; local paths become absolute under home()."""
    if value.startswith(_REMOTE_SCHEMES):
        return value
    path = Path(value.removeprefix("file://").removeprefix("file:")).expanduser()
    return str(path if path.is_absolute() else (home() / path).resolve())


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkSettings(Section):
    master: str = "local[*]"
    # Defaults only: a key given by spark-submit (--conf) wins over these.
    conf: dict[str, str] = Field(default_factory=dict)
    # Ivy cache that `make setup` fills once, so later sessions start offline.
    jars_cache: str = ".cache/ivy"
    # The packed environment executors run (`make dist`: dist/seqlake-executor-env.tar.gz),
    # at a URI every node can read; None: executors run the driver's interpreter (local mode).
    executor_env: str | None = None
    # Every node has jars_cache's resolved jars at the same path (an image bakes them
    # in: infra/docker): jobs put them on the classpath instead of shipping them, which
    # each executor of each job would otherwise fetch (the AWS SDK bundle alone is 0.5 GB).
    jars_on_nodes: bool = False

    @field_validator("master")
    @classmethod
    def _known_master(cls, master: str) -> str:
        if not _SPARK_MASTER.match(master):
            raise ValueError("not local[N], yarn, k8s://... or spark://...")
        return master

    @field_validator("conf", mode="before")
    @classmethod
    def _as_text(cls, conf: Any) -> Any:
        # TOML gives true / 8 where Spark wants "true" / "8".
        if isinstance(conf, dict):
            return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in conf.items()}
        return conf

    @field_validator("jars_cache")
    @classmethod
    def _jars_cache_absolute(cls, path: str) -> str:
        # Part of the installation (`make setup` fills the repository's), not of a SEQLAKE_HOME's data.
        return str(Path(path).expanduser() if Path(path).expanduser().is_absolute() else (REPO_ROOT / path).resolve())


class RaySettings(Section):
    # None starts a local Ray instance; "auto" or ray://host:port joins a cluster.
    address: str | None = None
    num_cpus: int | None = Field(default=None, ge=1)
    temp_dir: str = ".cache/ray"

    @field_validator("temp_dir")
    @classmethod
    def _temp_dir_absolute(cls, path: str) -> str:
        return _absolute(path)


class IngestSettings(Section):
    # A record older than this, relative to its landing date, is rejected as stale.
    max_lateness_days: int = Field(default=3, ge=0)
    # A record newer than the end of its landing date plus this is rejected as future.
    max_clock_skew_minutes: int = Field(default=60, ge=0, lt=24 * 60)
    # A landing line longer than this (bytes) is rejected as oversized: a
    # clickstream record is a few hundred bytes.
    max_record_bytes: int = Field(default=1 << 20, gt=0)


class CleanSettings(Section):
    # Event dates rewritten each night for late events; must cover ingest's
    # max_lateness_days so that no accepted late event misses its partition.
    lookback_days: int = Field(default=3, ge=0)
    # The statistics behind the flags of a date come from that date and the
    # profile_days before it, never from later dates.
    profile_days: int = Field(default=3, ge=1)
    session_gap_minutes: int = Field(default=30, ge=1)
    # A derived dwell (time to the user's next event in the session) is capped here.
    max_derived_dwell_minutes: int = Field(default=30, ge=1)
    # Stage 1, dwell. A read shorter than glance_s is a glance, a mode of its own
    # in real logs (6% of EB-NeRD reads are 0 s): dwell cannot tell its intent.
    # Other reads are short when their dwell, relative to what the item needs
    # (its typical read across users) and to the reader's own speed, falls in the
    # lowest short_dwell_tail of the day's robust residual distribution.
    glance_s: float = Field(default=1.0, ge=0)
    short_dwell_tail: float = Field(default=0.02, gt=0, lt=0.5)
    # Weight, in clicks, of the population prior in an item's or a user's estimate.
    prior_clicks: int = Field(default=5, ge=0)
    # Stage 2, bursts: at least burst_min_clicks clicks in a row, each within
    # min(burst_max_gap_s, burst_rhythm_fraction * the user's usual gap between
    # clicks, its 75th percentile, so that the user's own bursts do not set it).
    burst_min_clicks: int = Field(default=4, ge=2)
    burst_max_gap_s: float = Field(default=3.0, ge=0)
    burst_rhythm_fraction: float = Field(default=0.25, ge=0, le=1)
    # Bots: a user-day whose volume, click-through, regularity and spread over
    # the day are, together, outliers of the same day's population (robust
    # z-scores), at a false-alarm rate of bot_alpha per human user-day, and
    # whose manner alone (click-through, regularity) is unusual at
    # bot_manner_alpha: clicking more than others, as heavy readers do, is
    # not a bot's sign by itself.
    bot_alpha: float = Field(default=1e-4, gt=0, lt=0.5)
    bot_manner_alpha: float = Field(default=0.05, gt=0, lt=1)
    # Gaps within sessions needed to judge a user-day's regularity.
    bot_min_gaps: int = Field(default=5, ge=2)
    # Pseudo-impressions at the day's click-through that shrink a user-day's own.
    ctr_prior_impressions: int = Field(default=20, ge=0)
    # Evidence that a click was genuine, where a source has no truth (`seqlake
    # evaluate denoise --proxy`): the same user acts on the same item (cart,
    # fav, buy) or comes back to it in another session within this many days,
    # or the click's page was scrolled this far (percent; 100: to the end),
    # where the source logs scroll depth.
    confirmation_days: int = Field(default=7, ge=0)
    deep_read_scroll_pct: float = Field(default=100.0, gt=0, le=100)


class SequenceSettings(Section):
    max_len: int = Field(default=10_000, ge=1)
    # As-of dates (sequences, statistics, BSE) older than this many days before
    # the newest are deleted; the incremental build reads the one from before
    # clean's look-back window.
    retention_days: int = Field(default=7, ge=1)


class BseSettings(Section):
    """SDIM's hashing: `signatures` SimHash functions of `bits` bits over embeddings
    of `embedding_dim`. The projection `projection_version` is drawn once from
    `projection_seed` and persisted in the lakehouse (pipelines.bse.projection)."""

    embedding_dim: int = Field(default=128, ge=1)
    signatures: int = Field(default=16, ge=1)
    bits: int = Field(default=3, ge=1, le=16)
    projection_seed: int = 20_261_125
    projection_version: str = Field(default="simhash-v1", min_length=1)
    bootstrap_version: str = Field(default="bootstrap-v1", min_length=1)
    bootstrap_seed: int = 11


LabelMode = Literal["impressions", "implicit"]


class ExampleSettings(Section):
    # SDIM's long side, the one window of every reader of the long sequence:
    # training examples, the BSE bucket sums (signatures) and scoring all take
    # the newest train_len behaviors of the sequence (capped at sequences.max_len).
    train_len: int = Field(default=1024, ge=1)
    short_len: int = Field(default=50, ge=1)
    # An impression clicked only as noise: "exclude" it, or label it 0 ("negative").
    noisy_clicks: Literal["exclude", "negative"] = "exclude"
    # User and item statistics cover this many days up to the features' date.
    stats_days: int = Field(default=30, ge=1)
    # Rows per file, so that training streams files of sensible size.
    max_records_per_file: int = Field(default=50_000, ge=1)
    # Label mode per source (the `source` of bronze rows): "impressions" (one
    # example per shown slot) or "implicit" (behaviors as positives, sampled
    # negatives) for sources that log no impressions.
    default_label_mode: LabelMode = "impressions"
    label_modes: dict[str, LabelMode] = Field(default_factory=lambda: {"taobao": "implicit"})
    # Implicit mode: negatives per positive, seeded, drawn from the items acted on
    # the same day (as the positives are) by "popularity" (how often, so that
    # negatives and positives share one item distribution) or "uniform"ly.
    negatives_per_positive: int = Field(default=4, ge=1)
    negative_sampling: Literal["popularity", "uniform"] = "popularity"
    negative_seed: int = 17
    # Gather each example's BSE bucket sums for its candidate (`long_bse`), the
    # input of SDIM's BSE training mode; off, the column stays null.
    bse_long_side: bool = False


class TrainSettings(Section):
    """CTR training on Ray Train (pipelines.ctr); the embedding width is bse.embedding_dim."""

    workers: int = Field(default=2, ge=1)
    # Fractional CPUs per worker leave room for Ray Data's reads on a small machine.
    cpus_per_worker: float = Field(default=0.5, gt=0)
    # PACK: workers share nodes (cheap, one machine); SPREAD: one per node where
    # the cluster has them, so losing a node loses one worker (cluster profile).
    placement_strategy: Literal["PACK", "SPREAD"] = "PACK"
    epochs: int = Field(default=4, ge=1)
    # Stop when the validation AUC has not improved for more than this many epochs.
    patience: int = Field(default=1, ge=0)
    batch_size: int = Field(default=256, ge=1)
    learning_rate: float = Field(default=0.003, gt=0)
    # Share of training rows whose slot position is replaced by "unknown" (index
    # 0), so that the model learns the position that candidates scored offline,
    # which no page has placed yet, carry.
    position_dropout: float = Field(default=0.1, ge=0, lt=1)
    seed: int = 13
    # Workers lost before the run gives up; each loss resumes from the last checkpoint.
    max_failures: int = Field(default=1, ge=0)
    # With a single training date, this share of users (by hash) is held out for validation.
    validation_share: float = Field(default=0.1, gt=0, lt=1)
    # The examples are held in Ray's object store for the epochs while they fit in
    # this share of it (the validation rows first), streamed from their files otherwise.
    object_store_share: float = Field(default=0.5, ge=0, le=1)
    attention_hidden: tuple[int, ...] = (64, 32)
    mlp_hidden: tuple[int, ...] = (128, 64)
    # The hand-made share features (the candidate category's share of the long
    # and short sequences): off, DIN sees nothing of the long sequence and a long
    # model only what its own long side reads; on, an ablation that hands them the answer's outline.
    share_features: bool = False
    # SIM, ETA, TWIN: long behaviors retrieved for the second stage's attention.
    retrieve_k: int = Field(default=64, ge=1)
    # Items shown fewer times than this as of the training's last day share the
    # unknown embedding, and user_embedding = false drops the per-user vector:
    # on the generated worlds of bench/ctr_zoo.py (median item: 3 impressions)
    # both ids memorize their few rows and every epoch after the first scored
    # worse on held-out days; 0 and true keep every id (the nightly default).
    min_item_impressions: int = Field(default=0, ge=0)
    user_embedding: bool = True
    progress_every: int = Field(default=50, ge=0)


class RegistrySettings(Section):
    """MLflow tracking and model registry."""

    # None: MLFLOW_TRACKING_URI when set, else a SQLite database beside a local lakehouse.
    tracking_uri: str | None = None
    experiment: str = "seqlake-ctr"
    model_name: str = "seqlake-ctr"
    champion_alias: str = "champion"
    # A new model is promoted only when its AUC beats the champion's on the same day by this much.
    promotion_margin: float = Field(default=0.002, ge=0)


class ScoringSettings(Section):
    """Candidates of a day and their offline CTR scores (Ray Data batch inference).

    The candidates of day D + 1 come from what night D published only (the
    sequences and item statistics as of D): the user's recent items, the most
    acted items of the user's top categories, and the items co-visited with
    the user's recent items in other users' sequences."""

    # The user's newest distinct items: candidates themselves, and the seeds of co-visitation.
    recent_items: int = Field(default=5, ge=0)
    # The most-acted items (item statistics) of each of the user's top categories
    # (by behaviors in the long side of the sequence).
    top_categories: int = Field(default=2, ge=0)
    popular_per_category: int = Field(default=5, ge=0)
    # Co-visitation: item pairs at most covisit_gap behaviors apart in the newest
    # covisit_history behaviors of a user, counted over users; each item keeps
    # its covisit_per_item strongest neighbours, each user covisit_per_user.
    covisit_history: int = Field(default=50, ge=2)
    covisit_gap: int = Field(default=3, ge=1)
    covisit_per_item: int = Field(default=10, ge=1)
    covisit_per_user: int = Field(default=10, ge=0)
    # The instant of the scored day (UTC) whose time gaps the candidates' features
    # take: offline scores stand for a whole day of serving.
    score_time: dt.time = dt.time(12, 0)
    # Model replicas of the actor pool, and the CPU share each asks Ray for (a
    # fraction, so that a 2-core machine still has room for the reads).
    replicas: int = Field(default=2, ge=1)
    cpus_per_replica: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=1024, ge=1)


class QualitySettings(Section):
    """Write-audit-publish gates (Great Expectations suites per table, pipelines/quality)."""

    # Rate bands (noise rate, label rate, score coverage) come from the
    # published dates of this many days before the ones checked.
    history_days: int = Field(default=14, ge=1)


class ForgetSettings(Section):
    """Deleting users on request (`seqlake forget`, pipelines/stages/forget.py)."""

    # How long a file a commit removed stays for time travel (Delta VACUUM's
    # retention): as-published reads (training sets, the feature store) reach
    # back this far, and a forgotten user's rows leave the tables' history once
    # it has passed, at the first VACUUM after it (each forget runs one).
    # Readers never serve a forgotten user in the meantime.
    history_retention_hours: int = Field(default=720, ge=0)


class NightSettings(Section):
    """The nightly run (dags/nightly.py, `seqlake run`): what it trains and how its tasks run."""

    # embedded: every task runs its job's CLI on the Airflow worker; cluster:
    # Spark jobs through SparkSubmitOperator, Ray jobs through Ray's job API.
    profile: Literal["embedded", "cluster"] = "embedded"
    spark_conn_id: str = "spark_default"
    # Ray's job-submission (dashboard) address for the cluster profile.
    ray_jobs_address: str = "http://127.0.0.1:8265"
    # The seqlake wheel (`make dist`) Ray jobs run, at a path or URI the submitting
    # worker can read (Ray uploads it to the cluster); None: the Ray image's own install.
    ray_wheel: str | None = None
    # The Spark a Ray job (score, gate) audits and publishes through: in-process on
    # the job's driver. A Ray job is no spark-submit job; the cluster's own master
    # (yarn, k8s) would need that cluster's client configuration on the Ray head.
    ray_spark_master: str = "local[2]"
    # nightly: train and gate every night; weekly: on `train_weekday`'s night
    # (Monday = 0), scoring every night with the champion.
    train_cadence: Literal["nightly", "weekly"] = "nightly"
    train_weekday: int = Field(default=6, ge=0, le=6)
    # Labelled days a night trains on: the window before the night's date,
    # its last day held out for early stopping; the night's date is the gate's.
    train_window_days: int = Field(default=7, ge=2)
    # One of MODEL_NAMES.
    model: str = "sdim"
    # A landing folder counts as complete when it holds data files and this
    # marker, which the upstream writes last (Spark and Hadoop writers write
    # _SUCCESS; so does seqlake generate). For a source that writes none, set
    # it to null: the folder counts as complete once its files have not
    # changed for landing_settle_minutes.
    landing_marker: str | None = "_SUCCESS"
    landing_settle_minutes: int = Field(default=30, ge=0)
    # A job's writer lease (pipelines.lakehouse.lease) lapses this long after
    # its last renewal, which the job makes every third of it while it runs:
    # how long a job that died on another host keeps blocking the lakehouse.
    lease_seconds: int = Field(default=600, ge=3)
    sensor_timeout_minutes: int = Field(default=360, ge=1)
    sensor_poke_seconds: int = Field(default=300, ge=1)
    retries: int = Field(default=2, ge=0)
    retry_delay_minutes: int = Field(default=10, ge=0)
    task_timeout_minutes: int = Field(default=180, ge=1)

    @field_validator("ray_spark_master")
    @classmethod
    def _local_master(cls, master: str) -> str:
        if not re.fullmatch(r"local\[(\d+|\*)\]", master):
            raise ValueError("a Ray job's Spark runs in-process on its driver: local[N] or local[*]")
        return master

    @field_validator("model")
    @classmethod
    def _known_model(cls, model: str) -> str:
        if model not in MODEL_NAMES:
            raise ValueError(f"not one of the model zoo's: {', '.join(MODEL_NAMES)}")
        return model


class GeneratorSettings(Section):
    users: int = Field(default=2_000, ge=1)
    days: int = Field(default=3, ge=1)
    start_date: dt.date = dt.date(2026, 11, 1)
    seed: int = 7
    # Multiplies every kind of fake interest (accidental clicks, bots, human bursts).
    noise_scale: float = Field(default=1.0, ge=0)
    malformed_rate: float = Field(default=0.005, ge=0, lt=1)
    duplicate_rate: float = Field(default=0.01, ge=0, lt=1)
    late_rate: float = Field(default=0.02, ge=0, lt=1)
    # Share of items whose content length the upstream reports (0: none does).
    content_length_coverage: float = Field(default=0.7, ge=0, le=1)
    items: int = Field(default=20_000, ge=1)
    categories: int = Field(default=40, ge=1)
    # Heavy users: this share of the human users comes back heavy_user_activity
    # times as often a day, so that some histories cross the long side.
    heavy_user_share: float = Field(default=0.0, ge=0, le=1)
    heavy_user_activity: float = Field(default=30.0, ge=1)
    users_per_chunk: int = Field(default=10_000, ge=1)
    workers: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _items_cover_categories(self) -> GeneratorSettings:
        if self.items < self.categories:
            raise _across_keys(f"generator.items: must be >= generator.categories ({self.categories}), got {self.items}")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SEQLAKE_", env_nested_delimiter="__", extra="forbid", frozen=True, case_sensitive=False,
    )

    env: str = "local"
    # Root of every Delta table; a local folder or an object-store URI.
    lakehouse: str = Field(default="var/lakehouse", min_length=1)
    # Root of the landing files, one folder per date under landing/events/.
    landing: str = Field(default="var/landing", min_length=1)
    # Where the generator writes its truth; the pipeline never reads it.
    truth: str = Field(default="var/truth", min_length=1)
    # The nightly reports, one HTML file per date.
    reports: str = Field(default="var/reports", min_length=1)
    spark: SparkSettings = SparkSettings()
    ray: RaySettings = RaySettings()
    ingest: IngestSettings = IngestSettings()
    clean: CleanSettings = CleanSettings()
    sequences: SequenceSettings = SequenceSettings()
    bse: BseSettings = BseSettings()
    examples: ExampleSettings = ExampleSettings()
    train: TrainSettings = TrainSettings()
    registry: RegistrySettings = RegistrySettings()
    scoring: ScoringSettings = ScoringSettings()
    quality: QualitySettings = QualitySettings()
    forget: ForgetSettings = ForgetSettings()
    night: NightSettings = NightSettings()
    generator: GeneratorSettings = GeneratorSettings()

    @field_validator("lakehouse", "landing", "truth", "reports")
    @classmethod
    def _roots_absolute(cls, root: str) -> str:
        return _absolute(root)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.sequences.retention_days <= self.clean.lookback_days:
            raise _across_keys(
                f"sequences.retention_days: must be > clean.lookback_days ({self.clean.lookback_days}), "
                f"got {self.sequences.retention_days}; the incremental build needs the snapshot "
                "from before the look-back window"
            )
        if self.clean.lookback_days < self.ingest.max_lateness_days:
            raise _across_keys(
                f"clean.lookback_days: must be >= ingest.max_lateness_days ({self.ingest.max_lateness_days}), "
                f"got {self.clean.lookback_days}; late events older than the look-back would never reach silver"
            )
        if self.night.profile == "cluster":
            # Each task of a cluster night runs on whichever node or pod takes it: a
            # local root would be a different folder (or none) for each of them.
            for key in ("lakehouse", "landing", "truth", "reports"):
                if not getattr(self, key).startswith(_REMOTE_SCHEMES):
                    raise _across_keys(
                        f"{key}: the cluster profile needs a root every node shares ({', '.join(_REMOTE_SCHEMES)}), "
                        f"got {getattr(self, key)}"
                    )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # First wins: command-line overrides, then SEQLAKE_* variables, then the file.
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)


def load_settings(env: str | None = None, overrides: Sequence[str] = ()) -> Settings:
    """Settings for `env` (default SEQLAKE_ENV, else "local") with SEQLAKE_*
    variables and `key=value` overrides applied; ConfigError names the first bad key."""
    env = env or os.environ.get("SEQLAKE_ENV") or "local"
    conf_file = Path(os.environ["SEQLAKE_CONFIG"]) if os.environ.get("SEQLAKE_CONFIG") else CONF_DIR / f"{env}.toml"
    if not conf_file.is_file():
        raise ConfigError(f"env: no configuration file {conf_file} for environment {env!r}")
    # A subclass per file: pydantic-settings reads the TOML path from the model's config.
    bound = type("Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": conf_file}})
    try:
        return bound(env=env, **_override_tree(overrides))
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from None


def with_overrides(settings: Settings, overrides: Sequence[str]) -> Settings:
    """`settings` with `key=value` overrides applied on top (a command's --set
    and setting flags, when it runs in a process that has its settings)."""
    if not overrides:
        return settings
    merged = _merged(settings.model_dump(), _override_tree(overrides))
    try:
        return type(settings)(**merged)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc)) from None


def _merged(base: dict[str, Any], tree: dict[str, Any]) -> dict[str, Any]:
    return {**base, **{k: _merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
                       for k, v in tree.items()}}


def _override_tree(overrides: Sequence[str]) -> dict[str, Any]:
    """["spark.conf.spark.sql.x=1", "generator.seed=5"] -> nested dicts. Below a
    table of free keys (spark.conf, examples.label_modes) the rest is one key."""
    tree: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r}: expected key=value")
        parts = key.strip().split(".")
        for table in _FREE_KEY_TABLES:
            if parts[: len(table)] == list(table) and len(parts) > len(table):
                parts = [*table, ".".join(parts[len(table):])]
        node = tree
        for i, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{key}: {'.'.join(parts[: i + 1])} is not a section")
        node[parts[-1]] = value
    return tree


_FREE_KEY_TABLES = (("spark", "conf"), ("examples", "label_modes"))


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown configuration key"
    if error["type"] == "across_keys":
        return message
    return f"{key}: {message}, got {error['input']!r}"
