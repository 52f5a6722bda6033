"""Shared fixtures: one real Spark session (local, Delta) and small generated landings."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW_HOME", str(Path(__file__).resolve().parents[1] / ".cache" / "airflow"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))

from pipelines.config import Settings, load_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Small real samples the tests read, each folder with its SOURCE.txt.
TEST_DATA = REPO / "tests" / "data"

_TEST_SPARK = ["spark.master=local[2]", "spark.conf.spark.driver.memory=2g"]
# Test data is tiny: per-query overheads dominate, so one shuffle partition,
# Delta state in one task, no adaptive re-planning and no generated code
# (compiling expressions is about a third of a small job's time). Through the
# environment, so the jobs the tests launch (the DAG's tasks, the CLI) get them too.
TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "1",
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
}
os.environ.setdefault("SEQLAKE_SPARK__CONF", json.dumps(TEST_SPARK_CONF))


# The generated_nights fixture: 2 x 4 nights through every Spark stage.
GENERATED_NIGHTS_BUILD_LIMIT_S = 2700


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `pytest -n 2 --dist loadgroup` (make test) the tests that share the
    generated nights run on one worker, so that costly fixture is built once;
    the DAG and spark-submit runs (subprocesses) get a group of their own."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "generated_nights" in fixtures:
            item.add_marker(pytest.mark.xdist_group("generated_nights"))
            # Whichever of them runs first also builds the nights (558 s beside the
            # other worker here, past 900 s on a slower CI machine): its limit is
            # the suite's 900 s plus that build's own.
            item.add_marker(pytest.mark.timeout(900 + GENERATED_NIGHTS_BUILD_LIMIT_S))
        elif item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.xdist_group("subprocesses"))


def settings_in(folder: Path, *overrides: str) -> Settings:
    """Local settings whose lakehouse, landing and truth live in `folder`."""
    return load_settings(
        env="local",
        overrides=[
            *_TEST_SPARK,
            f"lakehouse={folder / 'lakehouse'}",
            f"landing={folder / 'landing'}",
            f"truth={folder / 'truth'}",
            *overrides,
        ]
    )


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from pipelines.lakehouse.session import spark_session

    settings = settings_in(tmp_path_factory.mktemp("spark"))
    session = spark_session(settings, "seqlake-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Settings:
    """Two generated days for 400 users, written once for the whole session."""
    from pipelines.synth.generate import generate

    folder = tmp_path_factory.mktemp("small_world")
    settings = settings_in(folder, "generator.users=400", "generator.days=2", "generator.workers=1")
    generate(settings.generator, settings.landing, settings.truth)
    return settings


@dataclasses.dataclass(frozen=True)
class GeneratedNights:
    """Four generated days run night by night in `nightly`, and as one range run
    of each stage in `ranged` (another lakehouse over the same landing files)."""

    nightly: Settings
    ranged: Settings
    days: list
    sequence_modes: list[str]
    signature_modes: list[str]


@pytest.fixture(scope="session")
def generated_nights(spark, tmp_path_factory) -> GeneratedNights:
    """300 users over four days with a one-day look-back (each night's late
    events change the previous date) and a long side shorter than the
    sequences (examples.train_len 32 of sequences.max_len 40, which the most
    active users pass by the last night), run by every stage, night by night
    and as a range."""
    from pipelines.lakehouse.files import landing_dates
    from pipelines.stages.clean import clean_dates
    from pipelines.stages.examples import build_examples
    from pipelines.stages.ingest import ingest_date
    from pipelines.stages.sequences import build_sequences
    from pipelines.stages.signatures import build_signatures
    from pipelines.synth.generate import generate

    folder = tmp_path_factory.mktemp("nights")
    common = [
        "generator.users=300", "generator.days=4", "generator.workers=1", "ingest.max_lateness_days=1",
        "clean.lookback_days=1", "sequences.retention_days=2", "sequences.max_len=40", "examples.train_len=32",
    ]
    nightly = settings_in(folder, *common)
    ranged = settings_in(folder, *common, f"lakehouse={folder / 'range-lakehouse'}")
    generate(nightly.generator, nightly.landing, nightly.truth)
    days = landing_dates(nightly.landing)
    modes, signature_modes = [], []
    for day in days:
        ingest_date(spark, nightly, day)
        clean_dates(spark, nightly, day)
        modes.append(build_sequences(spark, nightly, day)["mode"])
        signature_modes.append(build_signatures(spark, nightly, day)["mode"])
        build_examples(spark, nightly, day)
    for day in days:
        ingest_date(spark, ranged, day)
    clean_dates(spark, ranged, days[0], days[-1])
    build_sequences(spark, ranged, days[0], days[-1])
    build_signatures(spark, ranged, days[0], days[-1])
    build_examples(spark, ranged, days[0], days[-1])
    return GeneratedNights(nightly, ranged, days, modes, signature_modes)
