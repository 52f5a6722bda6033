#!/usr/bin/env bash
# Airflow standalone (scheduler, API server, SQLite) running seqlake's DAGs from
# this checkout, embedded profile: `make setup` first, then `infra/airflow/standalone.sh`.
# The UI prints its admin password on start; AIRFLOW_HOME is .cache/airflow.
set -euo pipefail
cd "$(dirname "$0")/../.."
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.cache/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$PWD/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
# A night's tasks run one at a time on a 2-core machine; a bigger worker can raise this.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-2}"
export PYSPARK_PYTHON="$PWD/.venv/bin/python"
export SEQLAKE_ENV="${SEQLAKE_ENV:-local}"
exec .venv/bin/airflow standalone
