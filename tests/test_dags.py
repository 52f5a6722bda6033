"""The DAG folder imports cleanly and the nightly DAG launches the jobs by name."""

from __future__ import annotations

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"seqlake_nightly"}


def test_nightly_ingests_the_logical_date_through_the_cli(dagbag):
    dag = dagbag.dags["seqlake_nightly"]
    assert [t.task_id for t in dag.tasks] == [
        "ingest_events", "clean_events", "build_sequences", "build_signatures", "build_examples",
    ]
    assert dag.get_task("ingest_events").bash_command.endswith("-m jobs.cli ingest --date {{ ds }}")
    assert dag.get_task("clean_events").bash_command.endswith("-m jobs.cli clean --date {{ ds }}")
    assert dag.get_task("clean_events").upstream_task_ids == {"ingest_events"}
    assert dag.get_task("build_sequences").upstream_task_ids == {"clean_events"}
    assert dag.get_task("build_signatures").upstream_task_ids == {"build_sequences"}
    assert dag.get_task("build_examples").upstream_task_ids == {"build_sequences"}
    assert dag.max_active_runs == 1


@pytest.mark.slow
def test_nightly_runs_in_process_on_a_generated_day(small_world, monkeypatch):
    """dag.test() runs the real tasks: the ingest job reads the generated landing folder."""
    import datetime as dt
    import subprocess
    import sys
    from pathlib import Path

    from deltalake import DeltaTable

    from pipelines.lakehouse.tables import (
        BRONZE_EVENTS,
        GOLD_TRAINING_EXAMPLES,
        GOLD_USER_BSE,
        GOLD_USER_SEQUENCES,
        SILVER_EVENTS,
        table_uri,
    )

    monkeypatch.setenv("SEQLAKE_LANDING", small_world.landing)
    monkeypatch.setenv("SEQLAKE_LAKEHOUSE", small_world.lakehouse + "-dag")
    monkeypatch.setenv("SEQLAKE_SPARK__MASTER", "local[2]")
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["seqlake_nightly"]
    day = small_world.generator.start_date
    run = dag.test(logical_date=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
    assert run.state == "success"
    for table, partition in (
        (BRONZE_EVENTS, "landing_date"), (SILVER_EVENTS, "event_date"),
        (GOLD_USER_SEQUENCES, "as_of_date"), (GOLD_USER_BSE, "as_of_date"),
        (GOLD_TRAINING_EXAMPLES, "event_date"),
    ):
        assert DeltaTable(table_uri(small_world.lakehouse + "-dag", table)).metadata().partition_columns == [partition]
