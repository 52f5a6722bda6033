"""The landing layout: one folder of JSON-lines files (gzipped or not) per landing date."""

from __future__ import annotations

import datetime as dt

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.errors import MissingInputError


def landing_folder(landing: str, day: dt.date) -> str:
    return f"{landing.rstrip('/')}/events/date={day.isoformat()}"


def landing_records(spark: SparkSession, landing: str, day: dt.date) -> DataFrame:
    """Every line of the landing folder of `day`: raw, source_file, landing_date."""
    folder = landing_folder(landing, day)
    try:
        return spark.read.text(folder).select(
            F.col("value").alias("raw"),
            F.col("_metadata.file_path").alias("source_file"),
            F.lit(day).alias("landing_date"),
        )
    except AnalysisException as exc:
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            raise MissingInputError(f"no landing files for {day} at {folder}") from exc
        raise
