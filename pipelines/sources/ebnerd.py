"""EB-NeRD (Ekstra Bladet): behaviors.parquet and history.parquet.

behaviors: one row per impression: article_ids_inview are the impressions (in
list order, the position), article_ids_clicked the clicks, read_time the dwell
of the click in seconds. history: per user, the clicks before the behavior
log, with their read times. Articles' lengths are not part of these two files.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.sources.records import landing_record


def landing_records(spark: SparkSession, folder: str) -> DataFrame:
    behaviors = spark.read.parquet(f"{folder}/behaviors.parquet").withColumn(
        "source_file", F.col("_metadata.file_path")
    )
    history = spark.read.parquet(f"{folder}/history.parquet").withColumn(
        "source_file", F.col("_metadata.file_path")
    )
    # EB-NeRD times are naive local times; read as the session time zone (UTC).
    impression_ms = F.unix_millis(F.col("impression_time").cast("timestamp"))
    impressions = behaviors.select(
        "*", F.posexplode_outer("article_ids_inview").alias("position", "article")
    ).select(
        landing_record(
            event_id=F.concat_ws("-", F.lit("eb-imp"), F.col("impression_id"), F.col("article")),
            event_type=F.lit("impression"),
            user_id=F.col("user_id"),
            item_id=F.col("article"),
            ts=impression_ms,
            impression_id=F.col("impression_id").cast("string"),
            position=F.col("position"),
        ).alias("raw"),
        "source_file",
    )
    clicks = behaviors.select("*", F.explode_outer("article_ids_clicked").alias("article")).select(
        landing_record(
            event_id=F.concat_ws("-", F.lit("eb-clk"), F.col("impression_id"), F.col("article")),
            event_type=F.lit("click"),
            user_id=F.col("user_id"),
            item_id=F.col("article"),
            ts=impression_ms,
            impression_id=F.col("impression_id").cast("string"),
            position=F.array_position("article_ids_inview", F.col("article")).cast("int") - 1,
            dwell_ms=F.round(F.col("read_time") * 1000).cast("long"),
        ).alias("raw"),
        "source_file",
    )
    past = history.select(
        "user_id",
        "source_file",
        F.posexplode_outer(
            F.arrays_zip("impression_time_fixed", "article_id_fixed", "read_time_fixed")
        ).alias("n", "click"),
    ).select(
        landing_record(
            event_id=F.concat_ws("-", F.lit("eb-hist"), F.col("user_id"), F.col("n")),
            event_type=F.lit("click"),
            user_id=F.col("user_id"),
            item_id=F.col("click.article_id_fixed"),
            ts=F.unix_millis(F.col("click.impression_time_fixed").cast("timestamp")),
            dwell_ms=F.round(F.col("click.read_time_fixed") * 1000).cast("long"),
        ).alias("raw"),
        "source_file",
    )
    return impressions.unionByName(clicks).unionByName(past)
