"""The loopback cluster, started once for the `cluster` tests (make test-cluster),
and the nights the Spark stages run on it and embedded over the same input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.config import Settings, load_settings
from pipelines.lakehouse.fingerprint import lakehouse_fingerprints
from pipelines.lakehouse.submit import submission
from tests.cluster.services import SPARK_HOME, Loopback, loopback_cluster, upload_folder
from tests.conftest import REPO, TEST_SPARK_CONF, settings_in

EXECUTOR_ENV = REPO / "dist" / "seqlake-executor-env.tar.gz"
SPARK_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (INFO|WARN) ")
# Three generated days: the third night has the two days a model needs to train.
GENERATED = ["generator.users=300", "generator.days=3", "generator.workers=1"]


@pytest.fixture(scope="session")
def loopback(tmp_path_factory) -> Loopback:
    if not EXECUTOR_ENV.exists():
        pytest.fail(f"{EXECUTOR_ENV} is missing: `make test-cluster` builds it (make dist)")
    with loopback_cluster(tmp_path_factory.mktemp("loopback")) as cluster, pytest.MonkeyPatch.context() as patch:
        for key, value in cluster.env.items():  # this process's delta-rs, pyarrow and boto3 reads of the store
            patch.setenv(key, value)
        yield cluster


def cluster_settings(loopback: Loopback, registry: Path) -> Settings:
    """The embedded rules, with every root on the object store."""
    root = f"s3a://{loopback.bucket}"
    return load_settings(env="local", overrides=[
        f"lakehouse={root}/lakehouse", f"landing={root}/landing", f"truth={root}/truth", f"reports={root}/reports",
        f"spark.executor_env={EXECUTOR_ENV}", f"registry.tracking_uri=sqlite:///{registry}", *GENERATED,
        # The workers share this machine's jars cache, as nodes of one image do.
        "spark.jars_on_nodes=true",
    ])


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings a job process on the cluster gets, as environment variables."""
    return {"SEQLAKE_ENV": "local", "SEQLAKE_LAKEHOUSE": settings.lakehouse, "SEQLAKE_LANDING": settings.landing,
            "SEQLAKE_TRUTH": settings.truth, "SEQLAKE_REPORTS": settings.reports, "SEQLAKE_SPARK__EXECUTOR_ENV": settings.spark.executor_env,
            "SEQLAKE_REGISTRY__TRACKING_URI": settings.registry.tracking_uri,
            "SEQLAKE_SPARK__JARS_ON_NODES": str(settings.spark.jars_on_nodes).lower()}


def spark_submit(loopback: Loopback, settings: Settings, application: str, *args: str) -> dict:
    """One job through spark-submit to the loopback master (client mode), its figures."""
    plan = submission(settings)
    command = [
        str(Path(sys.executable).parent / "spark-submit"), "--master", loopback.master, "--driver-memory", "2g",
        "--properties-file", str(REPO / "infra" / "spark" / "standalone.conf"), *plan.argv(),
        *(f"--conf={k}={v}" for k, v in loopback.s3a_conf().items()),
        application, *args,
    ]
    env = {**os.environ, **loopback.env, "SPARK_HOME": str(SPARK_HOME), **settings_env(settings)}
    env.pop("PYSPARK_PYTHON", None)  # the submission says which Python each side runs
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    # The job's own lines (its traceback, its one-line reason), without the JVM's log lines.
    ours = [line for line in (done.stdout + done.stderr).splitlines() if not SPARK_LOG_LINE.match(line)]
    assert done.returncode == 0, f"{application} {args}: exit {done.returncode}\n" + "\n".join(ours[-60:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def job(module: str) -> str:
    """The file spark-submit runs for a job module, where the package is installed."""
    return importlib.util.find_spec(module).origin


@dataclasses.dataclass(frozen=True)
class ClusterNights:
    """The generated days, run by the Spark stages on the cluster and embedded."""

    cluster: Settings
    embedded: Settings
    days: list[dt.date]
    figures: dict[str, dict]
    seconds: dict[str, float]
    # {table: rows and content hash} of each lakehouse as the Spark stages left it
    # (the Ray steps write to the cluster's afterwards).
    tables_on_cluster: dict[str, dict]
    tables_embedded: dict[str, dict]


# Three nights through spark-submit on a shared 2-core machine take longer than the
# suite's per-test limit: the cluster tests raise it (pytestmark in each module).
@pytest.fixture(scope="session")
def cluster_nights(loopback, spark, tmp_path_factory) -> ClusterNights:
    from pipelines.stages.candidates import build_candidates
    from pipelines.stages.clean import clean_dates
    from pipelines.stages.examples import build_examples
    from pipelines.stages.ingest import ingest_dates
    from pipelines.stages.sequences import build_sequences
    from pipelines.stages.signatures import build_signatures
    from pipelines.synth.generate import generate

    folder = tmp_path_factory.mktemp("nights")
    embedded = settings_in(folder / "embedded", *GENERATED, f"registry.tracking_uri=sqlite:///{folder / 'embedded.db'}")
    generate(embedded.generator, embedded.landing, embedded.truth)
    days = sorted(dt.date.fromisoformat(p.name.removeprefix("date=")) for p in (Path(embedded.landing) / "events").iterdir())
    first, last, scored = days[0], days[-1], days[-1] + dt.timedelta(days=1)

    started = time.perf_counter()
    ingest_dates(spark, embedded, first, last)
    clean_dates(spark, embedded, first, last)
    build_sequences(spark, embedded, first, last)
    build_signatures(spark, embedded, first, last)
    build_examples(spark, embedded, first, last)
    build_candidates(spark, embedded, scored)
    embedded_seconds = time.perf_counter() - started

    cluster = cluster_settings(loopback, folder / "cluster.db")
    upload_folder(loopback, Path(embedded.landing), "landing")
    upload_folder(loopback, Path(embedded.truth), "truth")
    started = time.perf_counter()
    ranged = ("--start", str(first), "--end", str(last), "--json")
    figures = {
        "ingest": spark_submit(loopback, cluster, job("jobs.ingest_events"), *ranged),
        "clean": spark_submit(loopback, cluster, job("jobs.clean_events"), *ranged),
        "sequences": spark_submit(loopback, cluster, job("jobs.build_sequences"), *ranged),
        "signatures": spark_submit(loopback, cluster, job("jobs.build_signatures"), *ranged),
        "examples": spark_submit(loopback, cluster, job("jobs.build_examples"), *ranged),
        "candidates": spark_submit(loopback, cluster, job("jobs.build_candidates"), "--date", str(scored), "--json"),
    }
    seconds = {"embedded": round(embedded_seconds, 1), "cluster": round(time.perf_counter() - started, 1)}
    return ClusterNights(cluster, embedded, days, figures, seconds,
                         lakehouse_fingerprints(cluster.lakehouse, cluster.landing),
                         lakehouse_fingerprints(embedded.lakehouse, embedded.landing))


def cluster_spark_conf(loopback: Loopback) -> str:
    """SEQLAKE_SPARK__CONF for a Spark session opened inside a Ray job on the loopback cluster."""
    return json.dumps({**TEST_SPARK_CONF, **loopback.s3a_conf()})


def ray_node_env(loopback: Loopback, settings: Settings) -> dict[str, str]:
    """The environment of a Ray node set up as the cluster's nodes would be: the
    object store's credentials and the lakehouse's settings, the venv's Python on PATH."""
    from tests.cluster.services import BIN

    return {
        **os.environ, **loopback.env, **settings_env(settings),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_AUTH_MODE": "disabled",
        "SEQLAKE_TRAIN__PLACEMENT_STRATEGY": "SPREAD",
        # As a node's own configuration would: how its Spark (a Ray job's, on its driver) reaches the store...
        "SEQLAKE_SPARK__CONF": cluster_spark_conf(loopback),
        # ...and where its Delta jars were resolved once (an image bakes them in: infra/docker).
        "SEQLAKE_SPARK__JARS_CACHE": str(REPO / ".cache" / "ivy"),
    }


@pytest.fixture(scope="session")
def ray_cluster(loopback, cluster_nights, tmp_path_factory):
    """A Ray head and a second node on loopback (2 logical CPUs each), on the cluster nights' lakehouse."""
    from tests.cluster.services import Started, start_ray

    started = Started(tmp_path_factory.mktemp("ray"))
    try:
        yield start_ray(started, ray_node_env(loopback, cluster_nights.cluster))
    finally:
        started.stop()
