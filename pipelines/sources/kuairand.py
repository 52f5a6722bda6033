"""KuaiRand logs (log_standard_*.csv, log_random_*.csv), with a header row:
user_id, video_id, date, hourmin, time_ms, is_click, ..., play_time_ms, duration_ms, ...

Every row is an exposure (impression) of one video: a page of one slot, whose
impression id is the row's key; a row with is_click = 1 is also a click on
that slot, whose dwell is play_time_ms. The content length is the video's
duration in seconds.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.sources.records import landing_record, with_source_file

_CORRUPT = "_corrupt_record"


def landing_records(spark: SparkSession, path: str) -> DataFrame:
    rows = with_source_file(
        spark.read.option("header", True)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", _CORRUPT)
        .option("enforceSchema", False)
        .schema(_schema(spark, path))
        .csv(path)
    )
    key = F.concat_ws("-", "user_id", "video_id", "time_ms")
    duration_s = F.round(F.col("duration_ms").try_cast("double") / 1000).cast("long")
    common = {
        "user_id": F.col("user_id"),
        "item_id": F.col("video_id"),
        "ts": F.col("time_ms"),
        "impression_id": F.concat(F.lit("kr-"), key),
        "position": F.lit(0),
        "content_length": F.coalesce(duration_s.cast("string"), F.col("duration_ms")),
    }
    impression = landing_record(
        event_id=F.concat(F.lit("kr-imp-"), key), event_type=F.lit("impression"), **common
    )
    click = landing_record(
        event_id=F.concat(F.lit("kr-clk-"), key), event_type=F.lit("click"),
        dwell_ms=F.col("play_time_ms"), **common,
    )
    records = F.when(
        F.col(_CORRUPT).isNotNull(), F.array(F.col(_CORRUPT))
    ).when(F.col("is_click") == "1", F.array(impression, click)).otherwise(F.array(impression))
    return rows.select(F.explode(records).alias("raw"), "source_file")


def _schema(spark: SparkSession, path: str):
    """Every column as text (ingest judges the types), plus the corrupt-record column."""
    from pyspark.sql import types as T

    header = spark.read.option("header", True).csv(path).columns
    return T.StructType(
        [T.StructField(name, T.StringType()) for name in header] + [T.StructField(_CORRUPT, T.StringType())]
    )
