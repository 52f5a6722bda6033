"""Configuration: one typed object, file < environment < command line, errors name the key."""

import datetime as dt
import re
from pathlib import Path

import pytest

from pipelines.config import ConfigError, load_settings


def test_local_defaults_resolve_paths_and_spark_conf():
    settings = load_settings(env="local", environ={})
    assert settings.env == "local"
    assert Path(settings.lakehouse).is_absolute()
    assert settings.spark.master == "local[*]"
    assert settings.spark.conf["spark.sql.session.timeZone"] == "UTC"
    assert settings.generator.start_date == dt.date(2026, 11, 1)


def test_environment_variables_override_the_file():
    settings = load_settings(
        env="local",
        environ={"SEQLAKE_LAKEHOUSE": "s3a://bucket/lake", "SEQLAKE_GENERATOR__SEED": "42"},
    )
    assert settings.lakehouse == "s3a://bucket/lake"
    assert settings.generator.seed == 42


def test_command_line_overrides_win_over_environment():
    settings = load_settings(
        env="local",
        overrides=["generator.seed=5", "spark.conf.spark.sql.shuffle.partitions=3"],
        environ={"SEQLAKE_GENERATOR__SEED": "42"},
    )
    assert settings.generator.seed == 5
    assert settings.spark.conf["spark.sql.shuffle.partitions"] == "3"


def test_cluster_example_keeps_object_store_uris():
    settings = load_settings(env="cluster", environ={})
    assert settings.lakehouse.startswith("s3a://")
    assert settings.spark.master == "yarn"
    assert settings.ray.address == "auto"


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("generator.noise_scale=-1", "generator.noise_scale"),
        ("generator.users=many", "generator.users"),
        ("generator.malformed_rate=1.5", "generator.malformed_rate"),
        ("generator.start_date=yesterday", "generator.start_date"),
        ("spark.master=mesos://x", "spark.master"),
        ("ingest.max_lateness_days=-2", "ingest.max_lateness_days"),
        ("ray.num_cpus=0", "ray.num_cpus"),
        ("generator.colour=blue", "generator.colour"),
        ("lakehouse=", "lakehouse"),
    ],
)
def test_invalid_values_fail_at_start_naming_the_key(override, key):
    with pytest.raises(ConfigError, match="^" + re.escape(key) + ": "):
        load_settings(env="local", overrides=[override], environ={})


def test_unknown_environment_variable_key_is_an_error():
    with pytest.raises(ConfigError, match="^spark.mastr: unknown configuration key"):
        load_settings(env="local", environ={"SEQLAKE_SPARK__MASTR": "local[1]"})


def test_unknown_environment_fails_with_its_name():
    with pytest.raises(ConfigError, match="'staging'"):
        load_settings(env="staging", environ={})


def test_override_needs_key_and_value():
    with pytest.raises(ConfigError, match="expected key=value"):
        load_settings(env="local", overrides=["generator.seed"], environ={})
