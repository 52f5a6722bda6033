"""The nightly DAG itself on the cluster profile, run by Airflow (dag.test) for
three generated nights against the loopback services: Spark tasks through the
DAG's SparkSubmitOperator to the standalone master, Ray tasks through its
RayJobOperator to a head and a second node, every root on the object store.

Its own target (make test-cluster-dag): three nights of twelve tasks each take
about 27 minutes on 2 cores (1,645 s on 2026-12-06), more than CI's 90 minutes
leave after make test and make test-cluster, which run the same operators on
the same services step by step.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyarrow import fs

from pipelines.lakehouse.files import delta_rows, delta_table, filesystem
from pipelines.lakehouse.tables import SCORES_CTR
from tests.cluster.conftest import GENERATED, cluster_settings, ray_node_env, settings_env
from tests.cluster.services import SPARK_HOME, Started, start_ray, upload_folder
from tests.conftest import REPO, settings_in

pytestmark = [pytest.mark.cluster, pytest.mark.cluster_dag, pytest.mark.timeout(5400)]

# Before a night has two labelled days behind it there is nothing to train, so
# nothing to gate, no champion to export and none to score with.
NOT_YET = {"train_model", "gate_model", "export_embeddings", "score_candidates"}


def test_three_nights_of_the_nightly_dag_on_the_cluster_profile(loopback, tmp_path, monkeypatch, capsys):
    from pipelines.synth.generate import generate

    local = settings_in(tmp_path / "generated", *GENERATED)
    generate(local.generator, local.landing, local.truth)
    upload_folder(loopback, Path(local.landing), "landing")
    upload_folder(loopback, Path(local.truth), "truth")
    settings = cluster_settings(loopback, tmp_path / "mlflow.db")
    nights = [local.generator.start_date + dt.timedelta(days=d) for d in range(local.generator.days)]

    started = Started(tmp_path / "ray")
    started.folder.mkdir()
    try:
        ray = start_ray(started, ray_node_env(loopback, settings))
        # The Airflow worker's environment: the cluster profile, its connection to the
        # master, the Ray job API and the wheel, spark-submit on PATH.
        (wheel,) = (REPO / "dist").glob("seqlake-*.whl")
        for key, value in {
            **settings_env(settings), **{k: v for k, v in ray_node_env(loopback, settings).items() if k.startswith("SEQLAKE_SPARK__")},
            "SEQLAKE_NIGHT__PROFILE": "cluster", "SEQLAKE_NIGHT__RAY_JOBS_ADDRESS": ray.dashboard,
            "SEQLAKE_NIGHT__RAY_WHEEL": str(wheel), "SEQLAKE_NIGHT__SENSOR_POKE_SECONDS": "5",
            "AIRFLOW_CONN_SPARK_DEFAULT": json.dumps({
                "conn_type": "spark", "host": "spark://127.0.0.1", "port": int(loopback.master.rsplit(":", 1)[1]),
                "extra": {"deploy-mode": "client"}}),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "SPARK_HOME": str(SPARK_HOME),
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("PYSPARK_PYTHON", raising=False)  # the submission says which Python each side runs
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(REPO / "dags")).dags["seqlake_nightly"]
        states = {}
        for night in nights:
            run = dag.test(logical_date=dt.datetime.combine(night + dt.timedelta(days=1), dt.time(2), tzinfo=dt.UTC))
            states[str(night)] = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    finally:
        started.stop()
    with capsys.disabled():
        print("\n" + json.dumps(states))

    # The first two nights: "nothing to do" is a skip on every kind of operator
    # (Ray: train, gate, score; spark-submit: export), never a failure.
    for night in nights[:2]:
        got = states[str(night)]
        assert {t for t, s in got.items() if s == "skipped"} == NOT_YET, got
        assert {s for t, s in got.items() if t not in NOT_YET} == {"success"}, got
    # The third trains, promotes the first champion, exports it and scores the next day.
    assert set(states[str(nights[2])].values()) == {"success"}, states[str(nights[2])]
    scored_day = nights[2] + dt.timedelta(days=1)
    scores = delta_rows(delta_table(settings.lakehouse, SCORES_CTR), partitions=[("score_date", "=", str(scored_day))])
    assert scores.num_rows > 0
    # Each night's report is on the object store, not on the worker that wrote it.
    store, folder = filesystem(settings.reports)
    written = {info.base_name for info in store.get_file_info(fs.FileSelector(folder))}
    assert written == {f"report-{night}.html" for night in nights}
