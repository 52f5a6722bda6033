# seqlake: every target does its own set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.seqlake-installed
# Feast in a venv of its own: feast 0.67 needs tenacity < 9, Airflow 3.3 >= 9.
FEAST_VENV := .venv-feast
FEAST_INSTALLED := $(FEAST_VENV)/.installed
JARS := .cache/ivy/.resolved
OBJECT_STORE_JARS := .cache/ivy/.resolved-object-store
DIST := dist/seqlake-executor-env.tar.gz
# The Compose specification's JSON schema, as docker-compose 1.29.2 ships it (tests/test_infra.py).
COMPOSE_SCHEMA := .cache/schemas/docker-compose/compose/config/compose_spec.json

export PYSPARK_PYTHON := $(abspath $(PY))
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW_HOME := $(abspath .cache/airflow)
export AIRFLOW__CORE__DAGS_FOLDER := $(abspath dags)

.PHONY: setup demo test test-fast test-chaos test-cluster test-cluster-dag dist bench lint clean

setup: $(INSTALLED) $(JARS) $(FEAST_INSTALLED) $(COMPOSE_SCHEMA)

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[airflow,dev]'
	touch $@

# ibis (the DuckDB offline store) breaks with duckdb 2; feast[delta] would pin deltalake < 1.
# seqlake itself without its dependencies: the offline store reads the run ledger with its code.
$(FEAST_INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(FEAST_VENV)
	$(FEAST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(FEAST_VENV)/bin/python -m pip install --quiet 'feast[duckdb]==0.67.*' 'duckdb>=1.1,<2' 'deltalake>=1.1,<2'
	$(FEAST_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

$(COMPOSE_SCHEMA): $(INSTALLED)
	$(PY) -m pip download --quiet --no-deps --dest .cache/schemas docker-compose==1.29.2
	$(PY) -m zipfile -e .cache/schemas/docker_compose-1.29.2-py2.py3-none-any.whl .cache/schemas/docker-compose

$(JARS): $(INSTALLED) infra/setup/resolve_spark_jars.py
	$(PY) infra/setup/resolve_spark_jars.py

$(OBJECT_STORE_JARS): $(INSTALLED) infra/setup/resolve_spark_jars.py
	$(PY) infra/setup/resolve_spark_jars.py --object-store

# The wheel (code, configuration, entry point) and the executors' packed environment, under dist/.
dist: $(INSTALLED)
	$(PY) infra/dist/package.py

$(DIST): $(INSTALLED) $(shell git ls-files pipelines jobs features)
	$(PY) infra/dist/package.py

demo: setup
	$(VENV)/bin/seqlake demo

# Every test, the DAG run and spark-submit included (CI runs this).
test: setup
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=15 -m "not cluster and not chaos"

# kill -9 at every commit point of every Spark stage, each rerun checked against an
# uninterrupted run (tests/chaos): its own target, which .ci/run also runs.
test-chaos: setup
	$(PY) -m pytest -q --durations=10 -m chaos tests/chaos

# The quick loop while developing: everything but the slow end-to-end runs.
test-fast: setup
	$(PY) -m pytest -m "not slow and not cluster and not chaos" -q

# A Spark standalone master with two workers, an S3-compatible store, and a Ray head
# with a second node, all on loopback: the Spark stages through spark-submit, then
# train, gate and score as Ray jobs. The tests start and stop all of it themselves
# (CI runs this after make test).
test-cluster: setup $(OBJECT_STORE_JARS) $(DIST)
	$(PY) -m pytest -q -m "cluster and not cluster_dag" tests/cluster --durations=10

# The nightly DAG itself (dag.test, cluster profile) on those services for three
# generated nights: about 27 minutes, outside CI, whose budget the targets above fill.
test-cluster-dag: setup $(OBJECT_STORE_JARS) $(DIST)
	$(PY) -m pytest -q -m cluster_dag tests/cluster --durations=10

bench: setup
	$(PY) bench/ingest.py --json
	$(PY) bench/clean.py --json
	$(PY) bench/sequences_bse.py --json
	$(PY) bench/bse_incremental.py --json
	$(PY) bench/denoise.py --json
	$(PY) bench/ctr_zoo.py --json
	$(PY) bench/ray_train_overhead.py --json
	$(PY) bench/scoring.py --json
	$(PY) bench/feature_reads.py --json
	$(PY) bench/night.py --no-train --json
	$(PY) bench/dag_night.py --json

lint: setup
	$(PY) -m ruff check pipelines jobs features dags infra tests bench

clean:
	rm -rf var .pytest_cache .ruff_cache spark-warehouse
