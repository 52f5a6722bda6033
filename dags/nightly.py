"""The nightly seqlake run. Orchestration only: each task launches a job by name.

The night processes the day that has ended: Airflow 3's cron schedules are
trigger timetables, so a run triggered at 02:00 UTC on day X has `ds` = X,
and its jobs get X - 1. catchup=True with max_active_runs=1: the nights missed
while the scheduler was down run afterwards, one at a time, oldest first.
Jobs run from the repository, so relative roots in the configuration resolve
there (the configuration resolves them against SEQLAKE_HOME or the
repository anyway, never against a task's temporary directory).

SEQLAKE_LAUNCHER picks how: "cli" (default) runs the job's CLI on the Airflow
worker, the embedded shape; "spark-submit" submits the job file to the
cluster behind Airflow's `spark_default` connection with the cluster config.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag

LAUNCHER = os.environ.get("SEQLAKE_LAUNCHER", "cli")
REPO = Path(__file__).resolve().parents[1]
JOBS_DIR = Path(os.environ.get("SEQLAKE_JOBS_DIR", REPO / "jobs"))
DAY_THAT_ENDED = "{{ macros.ds_add(ds, -1) }}"
DELTA_PACKAGES = "io.delta:delta-spark_2.13:4.0.1"


def spark_job(task_id: str, command: str, job_file: str, args: list[str]):
    if LAUNCHER == "spark-submit":
        return SparkSubmitOperator(
            task_id=task_id,
            conn_id="spark_default",
            application=str(JOBS_DIR / job_file),
            application_args=args,
            packages=DELTA_PACKAGES,
            env_vars={"SEQLAKE_ENV": "cluster"},
        )
    return BashOperator(
        task_id=task_id,
        bash_command=" ".join([sys.executable, "-m", "jobs.cli", command, *args]),
        cwd=str(REPO),
    )


@dag(
    dag_id="seqlake_nightly",
    schedule="0 2 * * *",
    start_date=dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
    catchup=True,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=10)},
    tags=["seqlake"],
)
def seqlake_nightly():
    date = ["--date", DAY_THAT_ENDED]
    # The landing folder of the day that ended, then that date's look-back window.
    ingest = spark_job("ingest_events", "ingest", "ingest_events.py", date)
    clean = spark_job("clean_events", "clean", "clean_events.py", date)
    sequences = spark_job("build_sequences", "sequences", "build_sequences.py", date)
    # Signatures use the configured embedding version (bse.bootstrap_version until a model trains one).
    signatures = spark_job("build_signatures", "signatures", "build_signatures.py", date)
    examples = spark_job("build_examples", "examples", "build_examples.py", date)
    ingest >> clean >> sequences >> [signatures, examples]


seqlake_nightly()
