"""The nightly seqlake run, and ad-hoc backfills of a date range. Orchestration only.

seqlake_nightly: wait for the day's landing folder, then the steps of
jobs.night in order. The night processes the day that has ended: Airflow 3's
cron schedules are trigger timetables, so a run triggered at 02:00 UTC on day
X has `ds` = X, and its jobs get X - 1 (the scoring steps get X, the day they
score). catchup=True with max_active_runs=1: the nights missed while the
scheduler was down run afterwards, one at a time, oldest first.

seqlake_backfill: the data stages (ingest .. examples) over a range given as
parameters, each stage once over the whole range (range runs give the tables
night-by-night runs give); models are not retrained for past dates.

    airflow dags trigger seqlake_backfill -c '{"start": "2026-11-01", "end": "2026-11-03"}'

How a step runs is the deployment profile's (night.profile). embedded: every
step runs its job's CLI on the Airflow worker, from the repository (relative
roots resolve there, never in a task's temporary folder). cluster: Spark steps
through SparkSubmitOperator (night.spark_conn_id), Ray steps through Ray's
job-submission API (night.ray_jobs_address), the report on the worker. A job
with nothing to do tonight exits 99, which marks its task skipped; steps
marked after_skip run after a skipped one (none_failed).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import Param, chain, dag, task
from airflow.sdk.exceptions import AirflowSkipException
from airflow.task.trigger_rule import TriggerRule

from jobs.cli import COMMANDS, SKIPPED
from jobs.night import BACKFILL, NIGHT, Step
from pipelines.config import NightSettings, load_settings
from pipelines.lakehouse.files import landing_ready

REPO = Path(__file__).resolve().parents[1]
DELTA_PACKAGES = "io.delta:delta-spark_2.13:4.0.1"
DAY_THAT_ENDED = "{{ macros.ds_add(ds, -1) }}"
NEXT_DAY = "{{ ds }}"
RULES = load_settings().night


def task_defaults(rules: NightSettings) -> dict[str, object]:
    return {
        "retries": rules.retries, "retry_delay": dt.timedelta(minutes=rules.retry_delay_minutes),
        "retry_exponential_backoff": True, "execution_timeout": dt.timedelta(minutes=rules.task_timeout_minutes),
    }


def landing_sensor(rules: NightSettings, day: str) -> PythonSensor:
    """Waits for the landing folder of `day` (a template) to hold data files (and the marker, if configured)."""
    return PythonSensor(
        task_id="wait_for_landing", python_callable=landing_is_complete, op_kwargs={"day": day},
        mode="reschedule", poke_interval=rules.sensor_poke_seconds, timeout=rules.sensor_timeout_minutes * 60,
        retries=0,
    )


def landing_is_complete(day: str) -> bool:
    settings = load_settings()
    return landing_ready(settings.landing, dt.date.fromisoformat(day), settings.night.landing_marker)


def step_operator(step: Step, rules: NightSettings, argv: list[str]):
    trigger = TriggerRule.NONE_FAILED if step.after_skip else TriggerRule.ALL_SUCCESS
    if rules.profile == "cluster" and step.engine == "spark":
        return SparkSubmitOperator(
            task_id=step.task_id, conn_id=rules.spark_conn_id, trigger_rule=trigger,
            application=str(REPO / (COMMANDS[step.command].module.replace(".", "/") + ".py")),
            application_args=argv, packages=DELTA_PACKAGES, env_vars={"SEQLAKE_ENV": "cluster"},
        )
    if rules.profile == "cluster" and step.engine == "ray":
        return submit_ray_job.override(task_id=step.task_id, trigger_rule=trigger)(rules.ray_jobs_address, [step.command, *argv])
    return BashOperator(
        task_id=step.task_id, trigger_rule=trigger, cwd=str(REPO),
        bash_command=" ".join([sys.executable, "-m", "jobs.cli", step.command, *argv]), skip_on_exit_code=SKIPPED,
    )


@task
def submit_ray_job(address: str, argv: list[str]) -> dict:
    """Run `seqlake ARGV --json` as a Ray job and wait for it; its summary is the task's result."""
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(address)
    # Exit 99 (nothing to do) is a success for Ray; the summary line says skipped.
    entrypoint = f"python -m jobs.cli {' '.join(argv)} --json || test $? -eq {SKIPPED}"
    job = client.submit_job(entrypoint=entrypoint, runtime_env={"env_vars": {"SEQLAKE_ENV": "cluster"}})
    while (status := client.get_job_status(job)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        time.sleep(10)
    logs = client.get_job_logs(job).strip().splitlines()
    if status != JobStatus.SUCCEEDED:
        raise RuntimeError(f"Ray job {job} {status}: " + "\n".join(logs[-20:]))
    summary = json.loads(logs[-1]) if logs else {}
    if "skipped" in summary:
        raise AirflowSkipException(summary["skipped"])
    return summary


@dag(
    dag_id="seqlake_nightly",
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    catchup=True,
    max_active_runs=1,
    default_args=task_defaults(RULES),
    tags=["seqlake"],
)
def seqlake_nightly():
    chain(
        landing_sensor(RULES, DAY_THAT_ENDED),
        *(step_operator(step, RULES, step.argv(DAY_THAT_ENDED, NEXT_DAY)) for step in NIGHT),
    )


@dag(
    dag_id="seqlake_backfill",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(RULES),
    params={
        "start": Param(type="string", format="date", description="first date to rebuild, YYYY-MM-DD"),
        "end": Param(type="string", format="date", description="last date to rebuild, YYYY-MM-DD"),
    },
    tags=["seqlake"],
)
def seqlake_backfill():
    rendered = {"start": "{{ params.start }}", "end": "{{ params.end }}"}
    chain(*(step_operator(step, RULES, [a.format(**rendered) for a in step.args]) for step in BACKFILL))


seqlake_nightly()
seqlake_backfill()
