"""The DAG folder imports cleanly; the nightly DAG launches the jobs by name,
from the repository, for the day that ended, and catches up missed nights in order."""

from __future__ import annotations

import datetime as dt

import pytest

from jobs.cli import UsageError
from pipelines.errors import BrokenPastError, LakehouseBusy, NothingToDo, QualityGateFailed
from tests.conftest import REPO


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"seqlake_nightly", "seqlake_backfill"}


def _at(day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=dt.UTC)


def _dates_passed(dag, logical_date: dt.datetime | None, run_after: dt.datetime | None = None) -> dict[str, str]:
    """The --date or --night each task of a run gives its job, rendered with
    what the task runner puts in the context of a run at `logical_date` (None:
    triggered by hand at `run_after` without one, where Airflow 3 has no `ds`)."""
    import types

    from airflow.sdk.execution_time import macros

    env = dag.get_template_env()
    run = types.SimpleNamespace(logical_date=logical_date, run_after=run_after or logical_date)
    context = {"dag_run": run, "macros": macros} | ({"ds": logical_date.strftime("%Y-%m-%d")} if logical_date else {})
    rendered = {t.task_id: env.from_string(" ".join(getattr(t, "argv", []))).render(**context) for t in dag.tasks}
    return {task: cmd.split("--date ")[-1] if "--date " in cmd else cmd.split("--night ")[1]
            for task, cmd in rendered.items() if "--date " in cmd or "--night " in cmd}


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
    passed = _dates_passed(dag, run.logical_date)
    # Every stage gets the day that ended; candidates and scores are for the day that began.
    assert {d for t, d in passed.items() if t not in ("build_candidates", "score_candidates")} == {"2026-11-04"}
    assert (passed["build_candidates"], passed["score_candidates"]) == ("2026-11-05", "2026-11-05")


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
    assert [_dates_passed(dag, r)["ingest_events"] for r in runs] == ["2026-11-03", "2026-11-04"]
    assert dag.catchup and dag.max_active_runs == 1


def test_a_run_triggered_by_hand_processes_the_day_that_ended_before_it(dagbag):
    passed = _dates_passed(dagbag.dags["seqlake_nightly"], None, run_after=_at(5, 9, 30))
    assert {d for t, d in passed.items() if t not in ("build_candidates", "score_candidates")} == {"2026-11-04"}
    assert (passed["build_candidates"], passed["score_candidates"]) == ("2026-11-05", "2026-11-05")


NIGHT_ORDER = [
    "wait_for_landing", "ingest_events", "clean_events", "build_sequences", "build_examples", "train_model",
    "gate_model", "export_embeddings", "build_signatures", "build_candidates", "score_candidates", "write_report",
]


def test_nightly_waits_for_the_landing_folder_then_runs_every_step_in_order(dagbag):
    dag = dagbag.dags["seqlake_nightly"]
    assert [t.task_id for t in dag.topological_sort()] == NIGHT_ORDER
    for before, after in zip(NIGHT_ORDER, NIGHT_ORDER[1:], strict=False):
        assert dag.get_task(after).upstream_task_ids == {before}
    sensor = dag.get_task("wait_for_landing")
    assert (sensor.mode, sensor.timeout, sensor.poke_interval) == ("reschedule", 360 * 60, 300)
    command = {t.task_id: " ".join([t.command, *t.argv]) for t in dag.tasks if hasattr(t, "command")}
    ended, today = "{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -1) }}", "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
    assert command["train_model"] == f"train --night {ended}"
    assert command["gate_model"] == f"models gate --date {ended}"
    assert command["export_embeddings"] == "models export"
    assert command["score_candidates"] == f"score --date {today}"
    assert command["write_report"] == f"report --date {ended}"
    # Nothing to do tonight (exit 99) skips a task and the ones after it, but
    # export, signatures and the report run after a skipped training.
    assert {t.task_id for t in dag.tasks if t.trigger_rule == "none_failed"} == {"export_embeddings", "build_signatures", "write_report"}
    ingest = dag.get_task("ingest_events")
    assert (ingest.retries, ingest.retry_exponential_backoff, ingest.execution_timeout) == (2, True, dt.timedelta(minutes=180))
    assert dag.max_active_runs == 1


def test_backfill_runs_the_data_stages_over_the_given_range(dagbag):
    dag = dagbag.dags["seqlake_backfill"]
    assert [" ".join([t.command, *t.argv]) for t in dag.topological_sort()] == [
        f"{stage} --start {{{{ params.start }}}} --end {{{{ params.end }}}}"
        for stage in ("ingest", "clean", "sequences", "signatures", "examples")
    ]
    assert dag.schedule is None and set(dag.params) == {"start", "end"}


def test_cluster_profile_submits_spark_and_ray_jobs(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    monkeypatch.setenv("SEQLAKE_NIGHT__PROFILE", "cluster")
    monkeypatch.setenv("SEQLAKE_NIGHT__SPARK_CONN_ID", "spark_prod")
    for root in ("lakehouse", "landing", "truth", "reports"):
        monkeypatch.setenv(f"SEQLAKE_{root.upper()}", f"s3a://bucket/{root}")
    dag = DagBag(dag_folder=str(REPO / "dags")).dags["seqlake_nightly"]
    clean = dag.get_task("clean_events")
    assert isinstance(clean, SparkSubmitOperator)
    assert (clean._conn_id, clean.application, clean.application_args) == (
        "spark_prod", str(REPO / "jobs" / "clean_events.py"), ["--date", "{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -1) }}"])
    train = dag.get_task("train_model")
    assert (train.address, train.argv) == (
        "http://127.0.0.1:8265", ["train", "--night", "{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -1) }}"])
    assert type(dag.get_task("write_report")).__name__ == "JobOperator"  # the report is written on the worker


def test_a_ray_job_publishes_through_a_spark_of_its_own_driver_not_the_clusters_master():
    from dags.nightly import ray_job_runtime_env

    assert ray_job_runtime_env("cluster", "local[2]", ["/tmp/code/jobs", "/tmp/code/pipelines"]) == {
        "env_vars": {"SEQLAKE_ENV": "cluster", "SEQLAKE_SPARK__MASTER": "local[2]", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"},
        "py_modules": ["/tmp/code/jobs", "/tmp/code/pipelines"],
    }


def test_a_ray_job_ships_the_wheels_packages_not_the_wheel_whose_dependencies_ray_would_install(tmp_path):
    import zipfile

    from dags.nightly import wheel_packages

    wheel = tmp_path / "seqlake-0.1.0-0abc-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in ("pipelines/__init__.py", "pipelines/conf/base.toml", "jobs/cli.py", "seqlake-0.1.0.dist-info/METADATA",
                     "seqlake-0.1.0.dist-info/entry_points.txt", "seqlake-0.1.0.data/scripts/seqlake"):
            archive.writestr(name, f"# {name}")
    code = tmp_path / "code"
    assert wheel_packages(str(wheel), code) == [str(code / "jobs"), str(code / "pipelines")]
    assert sorted(str(p.relative_to(code)) for p in code.rglob("*") if p.is_file()) == [
        "jobs/cli.py", "pipelines/__init__.py", "pipelines/conf/base.toml"]
    assert (code / "pipelines" / "conf" / "base.toml").read_text() == "# pipelines/conf/base.toml"


def test_landing_sensor_waits_for_the_completion_marker_or_a_settled_folder(tmp_path):
    import os

    from pipelines.lakehouse.files import landing_ready

    day, folder = dt.date(2026, 11, 4), tmp_path / "events" / "date=2026-11-04"
    assert not landing_ready(str(tmp_path), day, "_SUCCESS")
    folder.mkdir(parents=True)
    (folder / "_started").write_text("")
    (folder / "part-0.jsonl.gz").write_bytes(b"")
    assert not landing_ready(str(tmp_path), day, "_SUCCESS")  # data files, no marker yet: still landing
    (folder / "_SUCCESS").write_text("")
    assert landing_ready(str(tmp_path), day, "_SUCCESS")
    # A source that writes no marker: complete once no file changed for the settle time.
    (folder / "_SUCCESS").unlink()
    written = dt.datetime(2026, 11, 5, 1, 0, tzinfo=dt.UTC)
    for name in ("_started", "part-0.jsonl.gz"):
        os.utime(folder / name, (written.timestamp(), written.timestamp()))
    settle = dt.timedelta(minutes=30)
    assert not landing_ready(str(tmp_path), day, None, settle, now=written + dt.timedelta(minutes=29))
    assert landing_ready(str(tmp_path), day, None, settle, now=written + dt.timedelta(minutes=30))
    (folder / "part-0.jsonl.gz").unlink()
    assert not landing_ready(str(tmp_path), day, None, settle, now=written + dt.timedelta(hours=5))  # no data at all


def test_the_generator_marks_each_landing_folder_complete_as_an_upstream_would(small_world):
    from pathlib import Path

    from pipelines.lakehouse.files import landing_dates, landing_ready

    days = landing_dates(small_world.landing)
    assert days == [small_world.generator.start_date + dt.timedelta(days=d) for d in range(2)]
    assert all(landing_ready(small_world.landing, day, small_world.night.landing_marker) for day in days)
    assert small_world.night.landing_marker == "_SUCCESS"
    assert all((Path(small_world.landing) / "events" / f"date={day}" / "_SUCCESS").stat().st_size == 0 for day in days)


@pytest.mark.parametrize(("failure", "outcome"), [
    (QualityGateFailed("silver/events failed its suite"),
     "AirflowFailException: clean_events exited 3: a failed quality gate; not retried. silver/events failed its suite"),
    (BrokenPastError("no finished ingest run wrote 2026-11-02"),
     "AirflowFailException: clean_events exited 4: a date to backfill first; not retried. no finished ingest run wrote 2026-11-02"),
    (UsageError("give --date D"),
     "AirflowFailException: clean_events exited 2: a usage or configuration error; not retried. usage error: give --date D"),
    (OSError("connection reset"), "AirflowException: failed: OSError: connection reset"),
    (LakehouseBusy("seqlake ingest holds the lease"), "AirflowException: seqlake ingest holds the lease"),
    (NothingToDo("no champion model yet"), "AirflowSkipException: clean_events: nothing to do tonight: no champion model yet"),
])
def test_failures_a_retry_cannot_change_fail_the_task_at_once_and_others_retry(failure, outcome, monkeypatch):
    """The nightly's own operator on a job that raises as a job would."""
    import dags.nightly

    def job(command, argv, settings):
        assert (command, argv) == ("clean", ["--date", "2026-11-03"])
        raise failure

    monkeypatch.setattr(dags.nightly, "invoke", job)
    task = dags.nightly.JobOperator(task_id="clean_events", command="clean", argv=["--date", "2026-11-03"])
    with pytest.raises(Exception) as raised:
        task.execute({})
    assert f"{type(raised.value).__name__}: {raised.value}" == outcome


def test_a_task_runs_its_job_in_the_workers_process_and_returns_its_figures(tmp_path, monkeypatch):
    """`seqlake generate` as the task: its figures are the task's result (XCom), as JSON."""
    from dags.nightly import JobOperator

    monkeypatch.setenv("SEQLAKE_LANDING", str(tmp_path / "landing"))
    monkeypatch.setenv("SEQLAKE_TRUTH", str(tmp_path / "truth"))
    task = JobOperator(task_id="generate", command="generate", argv=["--users", "20", "--days", "1", "--workers", "1"])
    figures = task.execute({})
    assert figures["job"] == "generate" and figures["landing_dates"] == 1 and figures["events"] > 0
    assert sorted(p.name for p in (tmp_path / "landing" / "events").iterdir()) == ["date=2026-11-01"]


def test_the_cli_exits_with_the_status_of_its_failure(tmp_path):
    """A failed quality gate exits 3 and a broken past 4, with the one-line reason."""
    import subprocess
    import sys
    from pathlib import Path

    from pipelines.clickstream.publish import INGEST_STAGE
    from pipelines.lakehouse.ledger import Run, record_run

    lakehouse = tmp_path / "lakehouse"
    for day in (dt.date(2026, 11, 1), dt.date(2026, 11, 3)):
        record_run(str(lakehouse), Run(INGEST_STAGE, [day], dt.datetime(2026, 11, 4), source="landing"), {})
    done = subprocess.run([str(Path(sys.executable).parent / "seqlake"), "clean", "--date", "2026-11-03", "--lakehouse", str(lakehouse),
                           "--set", "clean.lookback_days=1", "--set", "ingest.max_lateness_days=1"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 4
    assert done.stderr.strip().splitlines()[-1].startswith(
        "seqlake clean: clean for 2026-11-03 refused: no finished ingest run wrote 2026-11-02.")


@pytest.mark.slow
def test_nightly_runs_in_process_on_a_generated_day(small_world, monkeypatch):
    """dag.test() runs the real tasks: triggered on the generated day's morning,
    the night ingests that day's landing folder; roots are relative, resolved
    against SEQLAKE_HOME (never the tasks' temporary folders)."""
    import subprocess
    import sys
    from pathlib import Path

    from deltalake import DeltaTable

    from pipelines.lakehouse.files import delta_rows
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
    monkeypatch.setenv("SEQLAKE_REPORTS", "reports-dag")
    run = dag.test(logical_date=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(2), tzinfo=dt.UTC))
    assert run.state == "success"
    states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    # The first night has no labelled day before it: no training, gate, champion or scores
    # yet; signatures (bootstrap embeddings), candidates and the report run all the same.
    assert {t for t, s in states.items() if s == "skipped"} == {"train_model", "gate_model", "export_embeddings", "score_candidates"}
    assert {t for t, s in states.items() if s == "success"} == set(NIGHT_ORDER) - {
        "train_model", "gate_model", "export_embeddings", "score_candidates"}
    assert (home / "reports-dag" / f"report-{day}.html").stat().st_size > 10_000
    for table, partition in (
        (BRONZE_EVENTS, "landing_date"), (SILVER_EVENTS, "event_date"),
        (GOLD_USER_SEQUENCES, "as_of_date"), (GOLD_USER_BSE, "as_of_date"),
        (GOLD_TRAINING_EXAMPLES, "event_date"),
    ):
        assert DeltaTable(table_uri(str(home / "lakehouse-dag"), table)).metadata().partition_columns == [partition]
    assert delta_rows(DeltaTable(table_uri(str(home / "lakehouse-dag"), BRONZE_EVENTS)),
                      columns=["landing_date"]).column("landing_date").unique().to_pylist() == [day]
