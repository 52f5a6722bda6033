"""The Spark session every job uses, with Delta configured."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pyspark
from delta import configure_spark_with_delta_pip
from pyspark import SparkConf, SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.storagelevel import StorageLevel

from pipelines.config import RaySettings, Settings
from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import write_atomically

_DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


def launched_by_spark_submit() -> bool:
    """spark-submit starts the JVM first and hands the Python driver its gateway."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def spark_packages(settings: Settings) -> list[str]:
    """The Maven packages a session needs, versions from what is installed:
    Delta's (delta-spark's own list) and, when data lives on s3a://, the
    hadoop-aws of pyspark's Hadoop client (another version fails at its first read)."""
    packages = configure_spark_with_delta_pip(SparkSession.Builder())._options["spark.jars.packages"].split(",")
    if any(uri.startswith("s3a://") for uri in (settings.lakehouse, settings.landing, settings.truth)):
        packages.append(f"org.apache.hadoop:hadoop-aws:{hadoop_version()}")
    return packages


# In the jars cache: {comma-joined packages: the jar files Ivy resolved for them}.
RESOLVED_JARS = "resolved-jars.json"


def record_resolved_jars(spark: SparkSession, settings: Settings) -> list[str]:
    """Write down which jars the session's packages resolved to (what Ivy put on
    its spark.jars), so that a job on nodes that hold the cache can name them
    without resolving again (spark.jars_on_nodes); returns their file names."""
    jars = sorted(Path(uri.removeprefix("file:")).name for uri in spark.conf.get("spark.jars").split(",") if uri)
    cache = Path(settings.spark.jars_cache)
    resolved = {**_resolutions(cache), ",".join(spark_packages(settings)): jars}
    # Jobs read the record while a second set-up may rewrite it: never half a file.
    write_atomically(str((cache / RESOLVED_JARS).resolve()), (json.dumps(resolved, indent=1, sort_keys=True) + "\n").encode())
    return jars


def _resolutions(cache: Path) -> dict[str, list[str]]:
    record = cache / RESOLVED_JARS
    return json.loads(record.read_text()) if record.exists() else {}


def resolved_jars(settings: Settings) -> list[Path]:
    """The jar files of this session's packages in the jars cache, as set-up resolved them."""
    packages, cache = ",".join(spark_packages(settings)), Path(settings.spark.jars_cache)
    resolved = _resolutions(cache)
    if packages not in resolved:
        raise MissingInputError(f"{cache} holds no resolution of {packages}: run make setup "
                                "(for s3a:// data, infra/setup/resolve_spark_jars.py --object-store)")
    return [cache / "jars" / name for name in resolved[packages]]


def hadoop_version() -> str:
    """The version of the Hadoop client jars that pyspark ships."""
    (client,) = (Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar")
    return client.stem.removeprefix("hadoop-client-api-")


def spark_session(settings: Settings, app_name: str) -> SparkSession:
    """A Delta-enabled session: embedded from settings, or the one spark-submit configured.

    Under spark-submit the master, the packages and every --conf given there
    stay as given; settings only fill the keys it left unset.
    """
    spark_settings = settings.spark
    # py4j reports its connection housekeeping (a pooled socket the JVM closed,
    # retried at once) at INFO with a traceback; a process whose root logger is at
    # INFO - an Airflow worker running the night's tasks - would print them as errors.
    logging.getLogger("py4j").setLevel(logging.WARNING)
    # Python workers must run the driver's interpreter (the venv), not the system one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if launched_by_spark_submit():
        # Attach to spark-submit's JVM first: only then does SparkConf() see the
        # --master/--conf values it passed as system properties.
        SparkContext._ensure_initialized()
        submitted = SparkConf()
        builder = SparkSession.builder.appName(app_name)
        for key, value in {**spark_settings.conf, **_DELTA_CONF}.items():
            if not submitted.contains(key):
                builder = builder.config(key, value)
        return builder.getOrCreate()
    builder = SparkSession.builder.appName(app_name).master(spark_settings.master)
    for key, value in {**spark_settings.conf, **_DELTA_CONF}.items():
        builder = builder.config(key, value)
    builder = builder.config("spark.jars.ivy", spark_settings.jars_cache)
    spark = builder.config("spark.jars.packages", ",".join(spark_packages(settings))).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextlib.contextmanager
def persisted(df: DataFrame) -> Iterator[DataFrame]:
    """`df` kept (memory, spilling to disk) while several actions read it, then released."""
    df.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        yield df
    finally:
        df.unpersist()


def materialized(rows: DataFrame) -> DataFrame:
    """`rows` computed once and kept on the executors' local disks (a local
    checkpoint) for the reads that follow: streamed there as they are
    computed, so a batch of any size fits, however long its rows' arrays."""
    return rows.localCheckpoint(storageLevel=StorageLevel.DISK_ONLY)


def ray_runtime(settings: RaySettings) -> None:
    """Join the configured Ray cluster (ray.address or RAY_ADDRESS), or start a
    local instance under the configured temp folder; once per process."""
    import ray

    if ray.is_initialized():
        return
    address = settings.address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, logging_level="WARNING")
        return
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    ray.init(
        num_cpus=settings.num_cpus or os.cpu_count(), include_dashboard=False, logging_level="WARNING",
        _temp_dir=settings.temp_dir, configure_logging=True, log_to_driver=True,
    )
