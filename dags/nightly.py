"""The nightly seqlake run, and ad-hoc backfills of a date range. Orchestration only.

seqlake_nightly: wait for the day's landing folder to be complete, then the
steps of pipelines.night in order. The night processes the day that has ended:
Airflow 3's cron schedules are trigger timetables, so a run triggered at 02:00
UTC on day X has the logical date X, and its jobs get X - 1 (the scoring steps
get X, the day they score). A run triggered by hand without a logical date
(`airflow dags trigger seqlake_nightly`) takes the day it was triggered on the
same way. catchup=True with max_active_runs=1: the nights missed while the
scheduler was down run afterwards, one at a time, oldest first.

A failure that a retry cannot change - a usage error, a failed quality gate,
a date that must be backfilled first (exit 2, 3, 4; jobs/cli.py) - fails its
task at once; any other failure is retried with backoff.

seqlake_backfill: the data stages (ingest .. examples) over a range given as
parameters, each stage once over the whole range (range runs give the tables
night-by-night runs give); models are not retrained for past dates.

    airflow dags trigger seqlake_backfill -c '{"start": "2026-11-01", "end": "2026-11-03"}'

How a step runs is the deployment profile's (night.profile). embedded: every
step runs its job's command in the Airflow worker's process (JobOperator), so
that a night's tasks in one process share one Spark session. cluster: Spark steps
through SparkSubmitOperator (night.spark_conn_id), Ray steps through Ray's
job-submission API (night.ray_jobs_address), the report on the worker. A job
with nothing to do tonight exits 99, which marks its task skipped; steps
marked after_skip run after a skipped one (none_failed).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import json
import re
import tempfile
import time
import zipfile
from pathlib import Path
from typing import NoReturn

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import BaseOperator, Param, chain, dag
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException
from airflow.task.trigger_rule import TriggerRule

from jobs.cli import (
    COMMANDS,
    NOT_RETRIED,
    SKIPPED,
    exit_status,
    failure_reason,
    invoke,
    summary_line,
)
from pipelines.config import NightSettings, Settings, load_settings
from pipelines.errors import NothingToDo
from pipelines.lakehouse.files import filesystem, landing_ready
from pipelines.lakehouse.submit import submission
from pipelines.night import BACKFILL, NIGHT, Step

# The run's day: its logical date, or when it was triggered for a manual run without one.
RUN_DAY = "(dag_run.logical_date or dag_run.run_after) | ds"
DAY_THAT_ENDED = "{{ macros.ds_add(" + RUN_DAY + ", -1) }}"
NEXT_DAY = "{{ " + RUN_DAY + " }}"
SETTINGS = load_settings()
RULES = SETTINGS.night


def task_defaults(rules: NightSettings) -> dict[str, object]:
    return {
        "retries": rules.retries, "retry_delay": dt.timedelta(minutes=rules.retry_delay_minutes),
        "retry_exponential_backoff": True, "execution_timeout": dt.timedelta(minutes=rules.task_timeout_minutes),
    }


def landing_sensor(rules: NightSettings, day: str) -> PythonSensor:
    """Waits for the landing folder of `day` (a template) to be complete: its
    completion marker (night.landing_marker), or for sources that write none,
    data files left unchanged for night.landing_settle_minutes."""
    return PythonSensor(
        task_id="wait_for_landing", python_callable=landing_is_complete, op_kwargs={"day": day},
        mode="reschedule", poke_interval=rules.sensor_poke_seconds, timeout=rules.sensor_timeout_minutes * 60,
        retries=0,
    )


def landing_is_complete(day: str) -> bool:
    settings = load_settings()
    rules = settings.night
    return landing_ready(settings.landing, dt.date.fromisoformat(day), rules.landing_marker,
                         dt.timedelta(minutes=rules.landing_settle_minutes))


def step_operator(step: Step, settings: Settings, argv: list[str]):
    rules = settings.night
    trigger = TriggerRule.NONE_FAILED if step.after_skip else TriggerRule.ALL_SUCCESS
    if rules.profile == "cluster" and step.engine == "spark":
        # Client mode: the driver's exit status is the task's (cluster mode reports only FAILED).
        submit = submission(settings)
        return JobSparkSubmitOperator(
            task_id=step.task_id, conn_id=rules.spark_conn_id, trigger_rule=trigger, deploy_mode="client",
            application=importlib.util.find_spec(COMMANDS[step.command].module).origin,
            application_args=argv, packages=",".join(submit.packages), archives=submit.archives, conf=submit.conf,
            env_vars={"SEQLAKE_ENV": settings.env},
        )
    if rules.profile == "cluster" and step.engine == "ray":
        return RayJobOperator(task_id=step.task_id, trigger_rule=trigger, address=rules.ray_jobs_address,
                              argv=[step.command, *argv], env=settings.env, spark_master=rules.ray_spark_master,
                              wheel=rules.ray_wheel)
    return JobOperator(task_id=step.task_id, trigger_rule=trigger, command=step.command, argv=argv)


def fail_by_exit_status(job: str, status: int | None, failure: Exception) -> NoReturn:
    """Re-raise a job's failure as Airflow should treat it: not retried when
    its exit status says a retry would fail the same way."""
    if status in NOT_RETRIED:
        raise AirflowFailException(f"{job} exited {status}: {NOT_RETRIED[status]}; not retried. {failure}") from failure
    raise failure


class JobExitStatus:
    """Mixed into an operator that runs a job: reads the job's exit status from
    the operator's failure (`exit_status_pattern`); 99 skips the task, 2-4 fail
    it without retry, others fail it to be retried."""

    exit_status_pattern: str

    def execute(self, context):
        try:
            return super().execute(context)
        except AirflowException as failure:
            found = re.search(self.exit_status_pattern, str(failure))
            status = int(found.group(1)) if found else None
            if status == SKIPPED:
                raise AirflowSkipException(f"{self.task_id}: nothing to do tonight") from failure
            fail_by_exit_status(self.task_id, status, failure)


class JobOperator(BaseOperator):
    """A job's command run in the worker's own process, as `seqlake COMMAND ARGV`
    runs it (settings from the worker's environment; relative roots resolve
    against SEQLAKE_HOME or the repository, never the task's folder). The
    tasks that one process runs - a whole night under dag.test() - share its
    Spark session, Ray runtime and imports: a CLI subprocess per task paid
    about 10 s for its JVM and imports before its first row, and more for its
    first Spark job. The job's figures are the task's result; its failure
    fails, skips or retries the task as its exit status would."""

    template_fields = ("argv",)

    def __init__(self, *, command: str, argv: list[str], **kwargs):
        super().__init__(**kwargs)
        self.command, self.argv = command, argv

    def execute(self, context):
        try:
            figures = invoke(self.command, list(self.argv), load_settings())
        except NothingToDo as reason:
            raise AirflowSkipException(f"{self.task_id}: nothing to do tonight: {reason}") from reason
        except Exception as failure:
            fail_by_exit_status(self.task_id, exit_status(failure), AirflowException(failure_reason(failure)))
        line = summary_line(self.command, figures, as_json=True)
        print(line, flush=True)
        return json.loads(line)


class JobSparkSubmitOperator(JobExitStatus, SparkSubmitOperator):
    """A job through spark-submit, whose exit status is the driver's."""

    exit_status_pattern = r"Error code is: (\d+)"


class RayJobOperator(BaseOperator):
    """`seqlake ARGV --json` as a Ray job, waited for; its summary is the task's
    result. One submission id per task try: a worker that runs the same try
    again attaches to the job instead of submitting a second one, and a task
    ended by Airflow (timeout, mark failed) stops its job. The job runs the code
    of the wheel that `make dist` built (night.ray_wheel) when one is configured."""

    template_fields = ("argv",)

    def __init__(self, *, address: str, argv: list[str], env: str, spark_master: str, wheel: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.address, self.argv, self.env, self.spark_master, self.wheel = address, argv, env, spark_master, wheel
        self.submission_id: str | None = None

    def execute(self, context):
        from ray.job_submission import JobStatus, JobSubmissionClient

        client = JobSubmissionClient(self.address)
        self.submission_id = ray_submission_id(self.dag_id, self.task_id, context["run_id"], context["ti"].try_number)
        if not _ray_job_exists(client, self.submission_id):
            # The job's own exit status, in its log: 99 (nothing to do) ends the Ray job as a success.
            entrypoint = (f"python -m jobs.cli {' '.join(self.argv)} --json; status=$?; echo {EXIT_MARK}$status; "
                          f"test $status -eq 0 -o $status -eq {SKIPPED}")
            with tempfile.TemporaryDirectory() as folder:  # Ray uploads the packages during submit_job
                code = wheel_packages(self.wheel, Path(folder)) if self.wheel else []
                client.submit_job(entrypoint=entrypoint, submission_id=self.submission_id,
                                  runtime_env=ray_job_runtime_env(self.env, self.spark_master, code))
        while (status := client.get_job_status(self.submission_id)) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
            time.sleep(5)
        return ray_job_summary(self.argv[0], status, client.get_job_logs(self.submission_id))

    def on_kill(self):
        if self.submission_id:
            from ray.job_submission import JobSubmissionClient

            JobSubmissionClient(self.address).stop_job(self.submission_id)


def ray_job_runtime_env(env: str, spark_master: str, code: list[str]) -> dict:
    """What a Ray job of the night runs with: the environment's settings, the Spark
    it publishes through on its own driver (night.ray_spark_master, never the
    cluster's master), and the code's package folders when it ships its own."""
    env_vars = {"SEQLAKE_ENV": env, "SEQLAKE_SPARK__MASTER": spark_master, "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}
    return {"env_vars": env_vars, **({"py_modules": code} if code else {})}


def wheel_packages(wheel: str, folder: Path) -> list[str]:
    """The wheel's top-level packages (code and configuration), unpacked under
    `folder`: a Ray job's py_modules. Given the wheel itself, Ray pip-installs it
    with every dependency (torch, pyspark, ...) into each node's job folder, about
    100 s a node, though the nodes' image has them all; the dependencies are the
    image's, the code is the job's."""
    store, path = filesystem(wheel)
    with store.open_input_file(path) as handle, zipfile.ZipFile(io.BytesIO(handle.read())) as archive:
        names = [n for n in archive.namelist() if "/" in n and not n.split("/", 1)[0].endswith((".dist-info", ".data"))]
        archive.extractall(folder, names)
    return sorted(str(folder / package) for package in {n.split("/", 1)[0] for n in names})


def ray_submission_id(dag_id: str, task_id: str, run_id: str, try_number: int) -> str:
    """The Ray job id of one try of one task of one run (Ray refuses a second job with an id it has)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"seqlake-{dag_id}-{task_id}-{run_id}-try{try_number}")


def _ray_job_exists(client, submission_id: str) -> bool:
    try:
        client.get_job_info(submission_id)
    except RuntimeError:  # the job-submission client's "job not found"
        return False
    return True


def ray_job_summary(job: str, status, log: str) -> dict:
    """The job's closing JSON line; its failure raised as Airflow should treat it, its skip as a skip."""
    from ray.job_submission import JobStatus

    # Progress bars redraw with terminal escapes; the job's own lines follow them.
    logs = [ANSI_ESCAPE.sub("", line) for line in log.strip().splitlines()]
    marks = [line.removeprefix(EXIT_MARK) for line in logs if line.startswith(EXIT_MARK)]
    lines = [line for line in logs if not line.startswith(EXIT_MARK)]
    if status != JobStatus.SUCCEEDED:
        failure = RuntimeError(f"Ray job {status}: " + "\n".join(lines[-20:]))
        fail_by_exit_status(job, int(marks[-1]) if marks and marks[-1].isdigit() else None, failure)
    summaries = [line for line in lines if line.startswith('{"job": ')]
    if not summaries:
        raise AirflowException(f"Ray job of {job} ended without its summary line: " + "\n".join(lines[-20:]))
    summary = json.loads(summaries[-1])
    if "skipped" in summary:
        raise AirflowSkipException(summary["skipped"])
    return summary


EXIT_MARK = "seqlake-exit-status: "
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


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
        *(step_operator(step, SETTINGS, step.argv(DAY_THAT_ENDED, NEXT_DAY)) for step in NIGHT),
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
    chain(*(step_operator(step, SETTINGS, [a.format(**rendered) for a in step.args]) for step in BACKFILL))


seqlake_nightly()
seqlake_backfill()
