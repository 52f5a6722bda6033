"""Reading the generator's truth: only evaluations and tests do, never the pipeline."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.synth.layout import truth_events_folder


def truth_clicks(spark: SparkSession, truth: str, day: dt.date) -> DataFrame:
    """event_id and truth label (genuine, accidental, human_burst, bot) of the clicks of `day`."""
    events = spark.read.parquet(truth_events_folder(truth, day))
    return events.where(F.col("event_type") == "click").select("event_id", "label")
