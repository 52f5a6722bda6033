"""The one typed configuration of seqlake.

Precedence, lowest first: dataclass defaults, the environment's TOML file
(`infra/conf/<env>.toml`, or the file named by SEQLAKE_CONFIG), SEQLAKE_*
environment variables, then `key=value` overrides from the command line.
Every value is validated when the configuration is built, so a bad setting
fails at start with a message naming its key instead of deep inside a job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = REPO_ROOT / "infra" / "conf"
ENV_PREFIX = "SEQLAKE_"
# Environment variables that configure how settings are found, not settings.
_LOCATOR_VARIABLES = {"SEQLAKE_ENV", "SEQLAKE_CONFIG"}
_OBJECT_STORE_SCHEMES = ("s3a://", "s3://", "abfss://", "gs://", "hdfs://", "file:/")
_SPARK_MASTER = re.compile(r"^(local(\[(\*|\d+)(,\d+)?\])?|yarn|k8s://.+|spark://.+)$")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


@dataclasses.dataclass(frozen=True)
class SparkSettings:
    master: str = "local[*]"
    # Defaults only: a key given by spark-submit (--conf) wins over these.
    conf: dict[str, str] = dataclasses.field(default_factory=dict)
    # Ivy cache that `make setup` fills once, so later sessions start offline.
    jars_cache: str = ".cache/ivy"

    def validate(self) -> None:
        if not _SPARK_MASTER.match(self.master):
            raise ConfigError(
                f"spark.master: {self.master!r} is not local[N], yarn, k8s://... or spark://..."
            )


@dataclasses.dataclass(frozen=True)
class RaySettings:
    # None starts a local Ray instance; "auto" or ray://host:port joins a cluster.
    address: str | None = None
    num_cpus: int | None = None
    temp_dir: str = ".cache/ray"

    def validate(self) -> None:
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ConfigError(f"ray.num_cpus: must be >= 1, got {self.num_cpus}")


@dataclasses.dataclass(frozen=True)
class IngestSettings:
    # A record older than this, relative to its landing date, is rejected as stale.
    max_lateness_days: int = 3
    # A record newer than the end of its landing date plus this is rejected as future.
    max_clock_skew_minutes: int = 60

    def validate(self) -> None:
        if self.max_lateness_days < 0:
            raise ConfigError(f"ingest.max_lateness_days: must be >= 0, got {self.max_lateness_days}")
        if self.max_clock_skew_minutes < 0:
            raise ConfigError(
                f"ingest.max_clock_skew_minutes: must be >= 0, got {self.max_clock_skew_minutes}"
            )


@dataclasses.dataclass(frozen=True)
class CleanSettings:
    # Event dates rewritten each night for late events; must cover ingest's
    # max_lateness_days so that no accepted late event misses its partition.
    lookback_days: int = 3
    # The statistics behind the flags of a date come from that date and the
    # profile_days before it, never from later dates.
    profile_days: int = 3
    session_gap_minutes: int = 30
    # A derived dwell (time to the user's next event in the session) is capped here.
    max_derived_dwell_minutes: int = 30
    # Stage 1, dwell. A read shorter than glance_s is a glance, a mode of its own
    # in real logs (6% of EB-NeRD reads are 0 s): dwell cannot tell its intent.
    # Other reads are short when their dwell, relative to what the item needs
    # (its typical read across users) and to the reader's own speed, falls in the
    # lowest short_dwell_tail of the day's robust residual distribution.
    glance_s: float = 1.0
    short_dwell_tail: float = 0.02
    # Weight, in clicks, of the population prior in an item's or a user's estimate.
    prior_clicks: int = 5
    # Stage 2, bursts: at least burst_min_clicks clicks in a row, each within
    # min(burst_max_gap_s, burst_rhythm_fraction * the user's usual gap between
    # clicks, its 75th percentile, so that the user's own bursts do not set it).
    burst_min_clicks: int = 4
    burst_max_gap_s: float = 3.0
    burst_rhythm_fraction: float = 0.25
    # Bots: a user-day whose volume, click-through, regularity and spread over
    # the day are, together, outliers of the same day's population (robust
    # z-scores), at a false-alarm rate of bot_alpha per human user-day.
    bot_alpha: float = 1e-4
    # Gaps within sessions needed to judge a user-day's regularity.
    bot_min_gaps: int = 5
    # Pseudo-impressions at the day's click-through that shrink a user-day's own.
    ctr_prior_impressions: int = 20

    def validate(self) -> None:
        for key in ("session_gap_minutes", "max_derived_dwell_minutes", "burst_min_clicks", "bot_min_gaps", "profile_days"):
            if getattr(self, key) < 1:
                raise ConfigError(f"clean.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("lookback_days", "prior_clicks", "glance_s", "burst_max_gap_s", "ctr_prior_impressions"):
            if getattr(self, key) < 0:
                raise ConfigError(f"clean.{key}: must be >= 0, got {getattr(self, key)}")
        for key in ("burst_rhythm_fraction",):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"clean.{key}: must be in [0, 1], got {getattr(self, key)}")
        for key in ("short_dwell_tail", "bot_alpha"):
            if not 0 < getattr(self, key) < 0.5:
                raise ConfigError(f"clean.{key}: must be in (0, 0.5), got {getattr(self, key)}")


@dataclasses.dataclass(frozen=True)
class SequenceSettings:
    max_len: int = 10_000
    # As-of dates (sequences, statistics, BSE) older than this many days before the
    # newest are deleted; the
    # incremental build reads the one from before clean's look-back window.
    retention_days: int = 7

    def validate(self) -> None:
        for key in ("max_len", "retention_days"):
            if getattr(self, key) < 1:
                raise ConfigError(f"sequences.{key}: must be >= 1, got {getattr(self, key)}")


@dataclasses.dataclass(frozen=True)
class BseSettings:
    """SDIM's hashing: `signatures` SimHash functions of `bits` bits over embeddings
    of `embedding_dim`. The projection `projection_version` is drawn once from
    `projection_seed` and persisted in the lakehouse (pipelines.bse.projection)."""

    embedding_dim: int = 128
    signatures: int = 16
    bits: int = 3
    projection_seed: int = 20_261_125
    projection_version: str = "simhash-v1"
    bootstrap_version: str = "bootstrap-v1"
    bootstrap_seed: int = 11

    def validate(self) -> None:
        for key in ("embedding_dim", "signatures", "bits"):
            if getattr(self, key) < 1:
                raise ConfigError(f"bse.{key}: must be >= 1, got {getattr(self, key)}")
        if self.bits > 16:
            raise ConfigError(f"bse.bits: at most 16 (2^bits buckets per signature), got {self.bits}")


@dataclasses.dataclass(frozen=True)
class ExampleSettings:
    train_len: int = 1024
    short_len: int = 50
    # An impression clicked only as noise: "exclude" it, or label it 0 ("negative").
    noisy_clicks: str = "exclude"
    # User and item statistics cover this many days up to the features' date.
    stats_days: int = 30
    # Rows per file, so that training streams files of sensible size.
    max_records_per_file: int = 50_000
    # Label mode per source (the `source` of bronze rows): "impressions" (one
    # example per shown slot) or "implicit" (behaviors as positives, sampled
    # negatives) for sources that log no impressions.
    default_label_mode: str = "impressions"
    label_modes: dict[str, str] = dataclasses.field(default_factory=lambda: {"taobao": "implicit"})
    # Implicit mode: negatives per positive, drawn by item "popularity" or "uniform"ly, seeded.
    negatives_per_positive: int = 4
    negative_sampling: str = "popularity"
    negative_seed: int = 17

    def validate(self) -> None:
        for key in ("train_len", "short_len", "stats_days", "max_records_per_file", "negatives_per_positive"):
            if getattr(self, key) < 1:
                raise ConfigError(f"examples.{key}: must be >= 1, got {getattr(self, key)}")
        if self.noisy_clicks not in ("exclude", "negative"):
            raise ConfigError(f"examples.noisy_clicks: 'exclude' or 'negative', got {self.noisy_clicks!r}")
        if self.negative_sampling not in ("popularity", "uniform"):
            raise ConfigError(f"examples.negative_sampling: 'popularity' or 'uniform', got {self.negative_sampling!r}")
        for key, mode in [("default_label_mode", self.default_label_mode)] + [
            (f"label_modes.{source}", mode) for source, mode in self.label_modes.items()
        ]:
            if mode not in ("impressions", "implicit"):
                raise ConfigError(f"examples.{key}: 'impressions' or 'implicit', got {mode!r}")


@dataclasses.dataclass(frozen=True)
class GeneratorSettings:
    users: int = 2_000
    days: int = 3
    start_date: dt.date = dt.date(2026, 11, 1)
    seed: int = 7
    # Multiplies every kind of fake interest (accidental clicks, bots, human bursts).
    noise_scale: float = 1.0
    malformed_rate: float = 0.005
    duplicate_rate: float = 0.01
    late_rate: float = 0.02
    # Share of items whose content length the upstream reports (0: none does).
    content_length_coverage: float = 0.7
    items: int = 20_000
    categories: int = 40
    users_per_chunk: int = 10_000
    workers: int = 2

    def validate(self) -> None:
        for key in ("users", "days", "items", "categories", "users_per_chunk", "workers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"generator.{key}: must be >= 1, got {getattr(self, key)}")
        if self.items < self.categories:
            raise ConfigError(
                f"generator.items: must be >= generator.categories ({self.categories}), got {self.items}"
            )
        if self.noise_scale < 0:
            raise ConfigError(f"generator.noise_scale: must be >= 0, got {self.noise_scale}")
        for key in ("malformed_rate", "duplicate_rate", "late_rate"):
            if not 0 <= getattr(self, key) < 1:
                raise ConfigError(f"generator.{key}: must be in [0, 1), got {getattr(self, key)}")
        if not 0 <= self.content_length_coverage <= 1:
            raise ConfigError(f"generator.content_length_coverage: must be in [0, 1], got {self.content_length_coverage}")


@dataclasses.dataclass(frozen=True)
class Settings:
    env: str = "local"
    # Root of every Delta table; a local folder or an object-store URI.
    lakehouse: str = "var/lakehouse"
    # Root of the landing files, one folder per date under landing/events/.
    landing: str = "var/landing"
    # Where the generator writes its truth; the pipeline never reads it.
    truth: str = "var/truth"
    spark: SparkSettings = dataclasses.field(default_factory=SparkSettings)
    ray: RaySettings = dataclasses.field(default_factory=RaySettings)
    ingest: IngestSettings = dataclasses.field(default_factory=IngestSettings)
    clean: CleanSettings = dataclasses.field(default_factory=CleanSettings)
    sequences: SequenceSettings = dataclasses.field(default_factory=SequenceSettings)
    bse: BseSettings = dataclasses.field(default_factory=BseSettings)
    examples: ExampleSettings = dataclasses.field(default_factory=ExampleSettings)
    generator: GeneratorSettings = dataclasses.field(default_factory=GeneratorSettings)

    def validate(self) -> None:
        for key in ("lakehouse", "landing", "truth"):
            if not getattr(self, key):
                raise ConfigError(f"{key}: must not be empty")
        for section in (self.spark, self.ray, self.ingest, self.clean, self.sequences, self.bse, self.examples, self.generator):
            section.validate()
        if self.sequences.retention_days <= self.clean.lookback_days:
            raise ConfigError(
                f"sequences.retention_days: must be > clean.lookback_days ({self.clean.lookback_days}), "
                f"got {self.sequences.retention_days}; the incremental build needs the snapshot "
                "from before the look-back window"
            )
        if self.clean.lookback_days < self.ingest.max_lateness_days:
            raise ConfigError(
                f"clean.lookback_days: must be >= ingest.max_lateness_days "
                f"({self.ingest.max_lateness_days}), got {self.clean.lookback_days}; "
                "late events older than the look-back would never reach silver"
            )


def load_settings(
    env: str | None = None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Settings for `env` with environment variables and `key=value` overrides applied."""
    environ = os.environ if environ is None else environ
    env = env or environ.get("SEQLAKE_ENV", "local")
    conf_file = Path(environ["SEQLAKE_CONFIG"]) if "SEQLAKE_CONFIG" in environ else CONF_DIR / f"{env}.toml"
    if not conf_file.is_file():
        raise ConfigError(f"env: no configuration file {conf_file} for environment {env!r}")
    tree: dict[str, Any] = tomllib.loads(conf_file.read_text())
    tree["env"] = env
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX) and name not in _LOCATOR_VARIABLES:
            _set_path(tree, name[len(ENV_PREFIX):].lower().split("__"), value, source=name)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r}: expected key=value")
        _set_path(tree, key.strip().split("."), value, source=key)
    settings = _build(Settings, tree, prefix="")
    settings.validate()
    return dataclasses.replace(
        settings,
        lakehouse=_absolute_uri(settings.lakehouse),
        landing=_absolute_uri(settings.landing),
        truth=_absolute_uri(settings.truth),
        spark=dataclasses.replace(settings.spark, jars_cache=str(_repo_path(settings.spark.jars_cache))),
        ray=dataclasses.replace(settings.ray, temp_dir=str(_repo_path(settings.ray.temp_dir))),
    )


def _set_path(tree: dict[str, Any], path: list[str], value: Any, source: str) -> None:
    node = tree
    for i, part in enumerate(path[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{source}: {'.'.join(path[: i + 1])} is not a section")
    node[path[-1]] = value


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, raw in data.items():
        full_key = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"{full_key}: unknown configuration key")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(raw, Mapping):
                raise ConfigError(f"{full_key}: expected a section, got {raw!r}")
            values[key] = _build(kind, raw, prefix=f"{full_key}.")
        else:
            values[key] = _coerce(kind, raw, full_key)
    return cls(**values)


def _coerce(kind: Any, raw: Any, key: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("", "none", "null")):
            return None
        return _coerce(options[0], raw, key)
    if origin is dict:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{key}: expected a table of key = value, got {raw!r}")
        return {str(k): str(_flatten(v)) for k, v in _flat_items(raw)}
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in ("true", "1", "yes"):
                return True
            if str(raw).lower() in ("false", "0", "no"):
                return False
            raise ValueError(raw)
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError(raw)
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError(raw)
            return float(raw)
        if kind is dt.date:
            return raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw))
        if kind is str:
            if isinstance(raw, Mapping | list):
                raise ValueError(raw)
            return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: expected {kind.__name__}, got {raw!r}") from exc
    raise ConfigError(f"{key}: unsupported type {kind}")


def _flat_items(table: Mapping[str, Any], prefix: str = ""):
    """TOML reads `spark.sql.x = 1` inside [spark.conf] as nested tables; Spark wants dotted keys."""
    for k, v in table.items():
        if isinstance(v, Mapping):
            yield from _flat_items(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", v


def _flatten(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def _is_remote(uri: str) -> bool:
    return uri.startswith(_OBJECT_STORE_SCHEMES) and not uri.startswith("file:/")


def _absolute_uri(uri: str) -> str:
    """Object-store URIs pass through; local paths become absolute so Spark and delta-rs agree."""
    if _is_remote(uri):
        return uri
    path = uri.removeprefix("file://").removeprefix("file:")
    return str(Path(path).expanduser().resolve())


def _repo_path(path: str) -> Path:
    candidate = Path(path).expanduser()
    return candidate if candidate.is_absolute() else REPO_ROOT / candidate
