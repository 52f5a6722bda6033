"""What spark-submit needs to run a seqlake job on a cluster, from the settings.

The DAG's SparkSubmitOperator and `make test-cluster` both build their
submissions here, so the one on the loopback cluster is the one Airflow runs.
"""

from __future__ import annotations

import dataclasses
import sys

from pipelines.config import Settings
from pipelines.lakehouse.session import resolved_jars, spark_packages

# Where an executor unpacks the environment archive, in its working folder.
_ENV_FOLDER = "env"


@dataclasses.dataclass(frozen=True)
class Submission:
    """spark-submit's options for a job: its packages, and the conf that makes
    executors run the packed environment (make dist) when one is configured."""

    packages: list[str]
    archives: str | None
    conf: dict[str, str]

    def argv(self) -> list[str]:
        """The options as spark-submit flags."""
        flags = ["--packages", ",".join(self.packages)] if self.packages else []
        if self.archives:
            flags += ["--archives", self.archives]
        for key, value in self.conf.items():
            flags += ["--conf", f"{key}={value}"]
        return flags


def submission(settings: Settings) -> Submission:
    """The submission of a job under `settings`. The driver runs where
    spark-submit runs (client mode: its exit status is the job's, which the
    DAG reads), on this interpreter; executors run the archive's."""
    spark = settings.spark
    conf = {"spark.jars.ivy": spark.jars_cache, "spark.pyspark.driver.python": sys.executable}
    if spark.executor_env:
        conf["spark.pyspark.python"] = f"./{_ENV_FOLDER}/bin/python"
    if spark.jars_on_nodes:
        classpath = ":".join(str(jar) for jar in resolved_jars(settings))
        conf |= {"spark.driver.extraClassPath": classpath, "spark.executor.extraClassPath": classpath}
    return Submission(
        packages=[] if spark.jars_on_nodes else spark_packages(settings),
        archives=f"{spark.executor_env}#{_ENV_FOLDER}" if spark.executor_env else None,
        conf=conf,
    )
