"""The DAG folder imports cleanly; the nightly DAG launches the jobs by name,
from the repository, for the day that ended, and catches up missed nights in order."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"seqlake_nightly"}


def _at(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)


def _dates_passed(dag, logical_date: dt.datetime) -> set[str]:
    """The --date each task of a run at `logical_date` gives its job."""
    from airflow.sdk.execution_time import macros

    env = dag.get_template_env()
    ds = logical_date.strftime("%Y-%m-%d")
    return {env.from_string(t.bash_command).render(ds=ds, macros=macros).split("--date ")[1] for t in dag.tasks}


def _scheduling(dag):
    """The timetable as the scheduler runs it (the DAG file declares the SDK's)."""
    from airflow.serialization.encoders import coerce_to_core_timetable

    return coerce_to_core_timetable(dag.timetable)


def test_a_run_triggered_at_two_processes_the_day_that_ended(dagbag):
    from airflow.timetables.base import TimeRestriction

    dag = dagbag.dags["seqlake_nightly"]
    run = _scheduling(dag).next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=_at(5), latest=None, catchup=True)
    )
    assert run.logical_date == _at(5, 2)
    assert _dates_passed(dag, run.logical_date) == {"2026-11-04"}


def test_two_missed_nights_run_afterwards_in_order(dagbag):
    """The scheduler last ran the night of Nov 3 and is back on Nov 5 at 03:00."""
    from airflow.timetables.base import TimeRestriction

    dag = dagbag.dags["seqlake_nightly"]
    restriction = TimeRestriction(earliest=dag.start_date, latest=_at(5, 3), catchup=True)
    timetable = _scheduling(dag)
    last = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=_at(3), latest=None, catchup=True)
    ).data_interval
    runs = []
    while (run := timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)) is not None:
        runs.append(run.logical_date)
        last = run.data_interval
    assert runs == [_at(4, 2), _at(5, 2)]
    assert [_dates_passed(dag, r) for r in runs] == [{"2026-11-03"}, {"2026-11-04"}]
    assert dag.catchup and dag.max_active_runs == 1


def test_tasks_run_from_the_repository_not_a_temporary_folder(dagbag):
    assert {t.cwd for t in dagbag.dags["seqlake_nightly"].tasks} == {str(REPO)}


def test_nightly_launches_the_jobs_through_the_cli_in_order(dagbag):
    dag = dagbag.dags["seqlake_nightly"]
    assert [t.task_id for t in dag.tasks] == [
        "ingest_events", "clean_events", "build_sequences", "build_signatures", "build_examples",
    ]
    assert dag.get_task("ingest_events").bash_command.endswith("-m jobs.cli ingest --date {{ macros.ds_add(ds, -1) }}")
    assert dag.get_task("clean_events").bash_command.endswith("-m jobs.cli clean --date {{ macros.ds_add(ds, -1) }}")
    assert dag.get_task("clean_events").upstream_task_ids == {"ingest_events"}
    assert dag.get_task("build_sequences").upstream_task_ids == {"clean_events"}
    assert dag.get_task("build_signatures").upstream_task_ids == {"build_sequences"}
    assert dag.get_task("build_examples").upstream_task_ids == {"build_sequences"}
    assert dag.max_active_runs == 1


@pytest.mark.slow
def test_nightly_runs_in_process_on_a_generated_day(small_world, monkeypatch):
    """dag.test() runs the real tasks: triggered on the generated day's morning,
    the night ingests that day's landing folder; roots are relative, resolved
    against SEQLAKE_HOME (never the tasks' temporary folders)."""
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

    home = Path(small_world.landing).parent
    monkeypatch.setenv("SEQLAKE_HOME", str(home))
    monkeypatch.setenv("SEQLAKE_LANDING", Path(small_world.landing).name)
    monkeypatch.setenv("SEQLAKE_LAKEHOUSE", "lakehouse-dag")
    monkeypatch.setenv("SEQLAKE_SPARK__MASTER", "local[2]")
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"], check=True, capture_output=True)
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags")).dags["seqlake_nightly"]
    day = small_world.generator.start_date
    run = dag.test(logical_date=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(2), tzinfo=dt.UTC))
    assert run.state == "success"
    for table, partition in (
        (BRONZE_EVENTS, "landing_date"), (SILVER_EVENTS, "event_date"),
        (GOLD_USER_SEQUENCES, "as_of_date"), (GOLD_USER_BSE, "as_of_date"),
        (GOLD_TRAINING_EXAMPLES, "event_date"),
    ):
        assert DeltaTable(table_uri(str(home / "lakehouse-dag"), table)).metadata().partition_columns == [partition]
    assert DeltaTable(table_uri(str(home / "lakehouse-dag"), BRONZE_EVENTS)).to_pyarrow_table(
        columns=["landing_date"]).column("landing_date").unique().to_pylist() == [day]
