"""Shared fixtures: one real Spark session (local, Delta) and small generated landings."""

from __future__ import annotations

import dataclasses
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

_TEST_SPARK = [
    "spark.master=local[2]",
    "spark.conf.spark.sql.shuffle.partitions=2",
    "spark.conf.spark.driver.memory=2g",
]


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
        ],
        environ={},
    )


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from pipelines.lakehouse.session import spark_session

    settings = settings_in(tmp_path_factory.mktemp("spark"))
    session = spark_session(settings.spark, "seqlake-tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Settings:
    """Two generated days for 400 users, written once for the whole session."""
    from jobs.generate_clickstream import generate

    folder = tmp_path_factory.mktemp("small_world")
    settings = settings_in(folder, "generator.users=400", "generator.days=2", "generator.workers=1")
    generate(settings.generator, settings.landing, settings.truth)
    return settings


def replace_generator(settings: Settings, **changes) -> Settings:
    return dataclasses.replace(settings, generator=dataclasses.replace(settings.generator, **changes))


@pytest.fixture(scope="session")
def cleaned_small_world(spark, small_world) -> Settings:
    """small_world ingested and cleaned, every landing date."""
    from jobs.clean_events import clean_dates
    from jobs.ingest_events import ingest_date
    from jobs.storage import landing_dates

    days = landing_dates(small_world.landing)
    for day in days:
        ingest_date(spark, small_world, day)
    clean_dates(spark, small_world, days[0], days[-1])
    return small_world
