"""Jobs run under spark-submit keep the master and conf given there."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import load_settings
from tests.conftest import REPO

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"


def _spark_submit(*args: str, properties: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    ivy = load_settings(env="local").spark.jars_cache
    command = [
        str(Path(sys.executable).parent / "spark-submit"), *properties,
        "--master", "local[1]",
        "--conf", "spark.sql.shuffle.partitions=3",
        "--conf", f"spark.jars.ivy={ivy}",
        "--packages", DELTA_PACKAGE,
        *args,
    ]
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_on_nodes_that_hold_the_jars_cache_a_submission_puts_its_jars_on_the_classpath_instead_of_shipping_them():
    from pipelines.lakehouse.submit import submission

    settings = load_settings(env="local", overrides=["spark.jars_on_nodes=true"])
    plan = submission(settings)
    jars = Path(settings.spark.jars_cache) / "jars"
    resolved = ["io.delta_delta-spark_2.13-4.0.1.jar", "io.delta_delta-storage-4.0.1.jar", "org.antlr_antlr4-runtime-4.13.1.jar"]
    assert plan.packages == [] and "--packages" not in plan.argv()
    assert plan.conf["spark.driver.extraClassPath"] == plan.conf["spark.executor.extraClassPath"] == ":".join(
        str(jars / name) for name in resolved)


def test_a_submission_on_nodes_whose_cache_never_resolved_its_packages_says_what_to_run(tmp_path):
    from pipelines.errors import MissingInputError
    from pipelines.lakehouse.submit import submission

    settings = load_settings(env="local", overrides=["spark.jars_on_nodes=true", f"spark.jars_cache={tmp_path}"])
    with pytest.raises(MissingInputError, match=f"holds no resolution of {DELTA_PACKAGE}: run make setup"):
        submission(settings)


def test_session_factory_keeps_what_spark_submit_set():
    done = _spark_submit("tests/spark_submit_probe.py")
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {
        "launched_by_spark_submit": True,
        "master": "local[1]",  # not the configured local[*]
        "shuffle_partitions": "3",  # not the configured 8
        "time_zone": "UTC",  # filled in from the configuration
        "delta_extension": "io.delta.sql.DeltaSparkSessionExtension",
    }


@pytest.mark.slow
def test_ingest_job_runs_under_spark_submit(tmp_path):
    day = dt.date(2026, 11, 2)
    folder = tmp_path / "landing" / "events" / f"date={day}"
    folder.mkdir(parents=True)
    ts = int(dt.datetime(2026, 11, 2, 8, tzinfo=dt.UTC).timestamp() * 1000)
    record = {"event_id": "e1", "event_type": "click", "user_id": 1, "item_id": 2, "ts": ts}
    (folder / "a.jsonl.gz").write_bytes(gzip.compress((json.dumps(record) + "\n{bad\n").encode()))
    done = _spark_submit(
        "jobs/ingest_events.py", "--date", str(day), "--json",
        "--landing", str(tmp_path / "landing"), "--lakehouse", str(tmp_path / "lakehouse"),
        properties=("--properties-file", str(REPO / "infra" / "spark" / "local.conf")),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert (figures["landed"], figures["bronze"], figures["rejected"]) == (2, 1, 1)
    assert figures["rejected_by_reason"] == {"malformed_record": 1}
