"""The Spark stages on a real cluster: a standalone master with two workers and
an S3-compatible store on loopback, jobs through spark-submit with the packed
environment, compared table by table with the embedded run of the same input."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.cluster.conftest import cluster_settings, settings_env, spark_submit
from tests.cluster.services import SPARK_HOME
from tests.conftest import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]


def test_executors_run_the_python_that_the_job_ships(loopback, tmp_path):
    settings = cluster_settings(loopback, tmp_path / "mlflow.db")
    seen = spark_submit(loopback, settings, str(REPO / "tests" / "cluster" / "executor_probe.py"))
    assert seen["driver"] == sys.executable
    executors = seen["executors"]
    # Both workers ran tasks, each in an executor folder of its own...
    folders = {Path(e["folder"]) for e in executors}
    assert {f.parents[1].name for f in folders} == {"worker-0", "worker-1"}
    for executor in executors:
        # ...on the interpreter unpacked from the archive into that folder, importing seqlake from it.
        env = Path(executor["folder"]) / "env"
        assert executor["executable"] == str(env / "bin" / "python")
        assert Path(executor["pipelines"]).resolve().is_relative_to(env.resolve())


def test_the_spark_stages_on_the_cluster_equal_the_embedded_run(cluster_nights, capsys):
    nights = cluster_nights
    on_cluster, at_home = nights.tables_on_cluster, nights.tables_embedded
    with capsys.disabled():  # the run's record, in make test-cluster's output
        print("\n" + json.dumps({"tables": on_cluster, "seconds": nights.seconds}, default=str))
    assert sorted(on_cluster) == sorted(at_home)
    assert {t for t in on_cluster if on_cluster[t] != at_home[t]} == set(), {t: (on_cluster[t], at_home[t]) for t in on_cluster}
    assert all(f["rows"] > 0 for f in on_cluster.values())


def test_nothing_to_do_under_the_dags_spark_submit_operator_skips_the_task(loopback, tmp_path, monkeypatch):
    """export_embeddings before the first promotion: the job exits 99 on the
    driver, which the cluster profile's operator turns into a skip. Even where
    the connection asks for cluster deploy mode: there the driver's exit
    status never reaches spark-submit (and standalone refuses Python drivers)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from dags.nightly import JobSparkSubmitOperator, step_operator
    from pipelines.night import NIGHT

    settings = cluster_settings(loopback, tmp_path / "mlflow.db")
    settings = settings.model_copy(update={"night": settings.night.model_copy(update={"profile": "cluster"})})
    connection = {"conn_type": "spark", "host": "spark://127.0.0.1", "port": int(loopback.master.rsplit(":", 1)[1]),
                  "extra": {"deploy-mode": "cluster"}}
    monkeypatch.setenv(f"AIRFLOW_CONN_{settings.night.spark_conn_id.upper()}", json.dumps(connection))
    # As on an Airflow worker image: spark-submit on PATH, its Spark installation in SPARK_HOME.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SPARK_HOME", str(SPARK_HOME))
    for key, value in settings_env(settings).items():
        monkeypatch.setenv(key, value)
    (export,) = [step for step in NIGHT if step.task_id == "export_embeddings"]
    operator = step_operator(export, settings, export.argv("2026-11-02", "2026-11-03"))
    assert isinstance(operator, JobSparkSubmitOperator)
    with pytest.raises(AirflowSkipException, match="nothing to do tonight"):
        operator.execute({})
