"""Configuration: file < SEQLAKE_* variables < --set, errors name the key and the value,
relative roots resolve against one base whatever the working directory."""

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import REPO_ROOT, ConfigError, load_settings, with_overrides


@pytest.fixture(autouse=True)
def no_seqlake_variables(monkeypatch):
    for name in list(os.environ):
        if name.startswith("SEQLAKE_"):
            monkeypatch.delenv(name)


def test_local_defaults_resolve_roots_against_the_repository_and_read_spark_conf():
    settings = load_settings(env="local")
    assert settings.env == "local"
    assert settings.lakehouse == str(REPO_ROOT / "var" / "lakehouse")
    assert settings.spark.jars_cache == str(REPO_ROOT / ".cache" / "ivy")
    assert settings.spark.master == "local[*]"
    assert settings.spark.conf["spark.sql.session.timeZone"] == "UTC"
    assert settings.generator.start_date == dt.date(2026, 11, 1)
    assert settings.examples.label_modes == {"taobao": "implicit"}


def test_precedence_is_file_then_environment_then_command_line(monkeypatch):
    monkeypatch.setenv("SEQLAKE_GENERATOR__SEED", "42")
    monkeypatch.setenv("SEQLAKE_GENERATOR__USERS", "900")
    monkeypatch.setenv("SEQLAKE_LAKEHOUSE", "s3a://bucket/lake")
    settings = load_settings(env="local", overrides=["generator.seed=5", "spark.conf.spark.sql.shuffle.partitions=3"])
    assert (settings.generator.seed, settings.generator.users) == (5, 900)  # --set, then the variable
    assert settings.generator.days == 4  # the file
    assert settings.lakehouse == "s3a://bucket/lake"
    # One key of a table is overridden; the file's other keys stay.
    assert settings.spark.conf["spark.sql.shuffle.partitions"] == "3"
    assert settings.spark.conf["spark.ui.enabled"] == "false"


def test_relative_roots_never_depend_on_the_working_directory(tmp_path, monkeypatch):
    script = "from pipelines.config import load_settings; s = load_settings(); print(s.lakehouse, s.ray.temp_dir)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEQLAKE_")}
    here = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert here.stdout.split() == [str(REPO_ROOT / "var" / "lakehouse"), str(REPO_ROOT / ".cache" / "ray")]
    elsewhere = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env={**env, "SEQLAKE_HOME": str(tmp_path / "home")},
        capture_output=True, text=True, check=True,
    )
    assert elsewhere.stdout.split() == [str(tmp_path / "home" / "var" / "lakehouse"), str(tmp_path / "home" / ".cache" / "ray")]


def test_cluster_example_keeps_object_store_uris():
    settings = load_settings(env="cluster")
    assert settings.lakehouse.startswith("s3a://")
    assert settings.spark.master == "yarn"
    assert settings.ray.address == "auto"
    # The report outlives the worker pod that writes it; a Ray job publishes through a Spark of its own driver.
    assert settings.reports.startswith("s3a://")
    assert settings.night.ray_spark_master.startswith("local[")


@pytest.mark.parametrize("root", ["lakehouse", "landing", "truth", "reports"])
def test_the_cluster_profile_refuses_a_root_that_only_one_node_has(root):
    with pytest.raises(ConfigError, match=f"^{root}: the cluster profile needs a root every node shares .*got /tmp/{root}$"):
        load_settings(env="cluster", overrides=[f"{root}=/tmp/{root}"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("generator.noise_scale=-1", "generator.noise_scale: Input should be greater than or equal to 0, got '-1'"),
        ("generator.users=many", "generator.users: Input should be a valid integer, unable to parse string as an integer, got 'many'"),
        ("generator.malformed_rate=1.5", "generator.malformed_rate: Input should be less than 1, got '1.5'"),
        ("generator.start_date=yesterday", "generator.start_date: Input should be a valid date"),
        ("spark.master=mesos://x", "spark.master: not local[N], yarn, k8s://... or spark://..., got 'mesos://x'"),
        ("ingest.max_lateness_days=-2", "ingest.max_lateness_days: Input should be greater than or equal to 0, got '-2'"),
        ("ray.num_cpus=0", "ray.num_cpus: Input should be greater than or equal to 1, got '0'"),
        ("night.ray_spark_master=yarn",
         "night.ray_spark_master: a Ray job's Spark runs in-process on its driver: local[N] or local[*], got 'yarn'"),
        ("generator.colour=blue", "generator.colour: unknown configuration key"),
        ("lakehouse=", "lakehouse: String should have at least 1 character, got ''"),
        ("examples.label_modes.kuairand=bad", "examples.label_modes.kuairand: Input should be 'impressions' or 'implicit', got 'bad'"),
        ("sequences.retention_days=2", "sequences.retention_days: must be > clean.lookback_days (3), got 2"),
        ("night.model=dien", "night.model: not one of the model zoo's: sdim, din, long_attention, avg_pool, sim, eta, twin, got 'dien'"),
    ],
)
def test_invalid_values_fail_at_start_naming_the_key_and_the_value(override, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        load_settings(env="local", overrides=[override])


def test_a_command_run_in_process_applies_its_overrides_on_the_processs_settings(monkeypatch):
    monkeypatch.setenv("SEQLAKE_GENERATOR__USERS", "900")
    settings = load_settings(env="local", overrides=["generator.seed=5"])
    monkeypatch.setenv("SEQLAKE_GENERATOR__USERS", "1")  # after the process read its settings: not seen
    overridden = with_overrides(settings, ["train.epochs=1", "spark.conf.spark.sql.shuffle.partitions=2"])
    assert (overridden.train.epochs, overridden.generator.seed, overridden.generator.users) == (1, 5, 900)
    assert overridden.spark.conf["spark.sql.shuffle.partitions"] == "2"
    assert overridden.spark.conf["spark.ui.enabled"] == "false"
    assert settings.train.epochs == 4 and with_overrides(settings, []) is settings
    with pytest.raises(ConfigError, match="^train.epochs: Input should be greater than or equal to 1, got '0'"):
        with_overrides(settings, ["train.epochs=0"])


def test_unknown_environment_variable_key_is_an_error(monkeypatch):
    monkeypatch.setenv("SEQLAKE_SPARK__MASTR", "local[1]")
    with pytest.raises(ConfigError, match="^spark.mastr: unknown configuration key"):
        load_settings(env="local")


def test_unknown_environment_fails_with_its_name():
    with pytest.raises(ConfigError, match="'staging'"):
        load_settings(env="staging")


def test_another_file_can_be_named(tmp_path, monkeypatch):
    conf = tmp_path / "mine.toml"
    conf.write_text('lakehouse = "lake"\n[generator]\nusers = 7\n')
    monkeypatch.setenv("SEQLAKE_CONFIG", str(conf))
    settings = load_settings()
    assert (settings.generator.users, settings.lakehouse) == (7, str(REPO_ROOT / "lake"))


def test_override_needs_key_and_value():
    with pytest.raises(ConfigError, match="expected key=value"):
        load_settings(env="local", overrides=["generator.seed"])


def test_the_configuration_imports_no_stage():
    source = Path(REPO_ROOT / "pipelines" / "config.py").read_text()
    assert not re.search(r"^\s*(from|import) pipelines\.", source, re.MULTILINE)
