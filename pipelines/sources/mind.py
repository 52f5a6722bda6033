"""MIND behaviors.tsv: impression_id, user_id, time, history, impressions (tab-separated).

time is like "11/15/2019 8:55:22 AM"; impressions are "N123-1 N456-0" (news id,
clicked or not), in display order. MIND has no dwell. The history column is a
list of earlier clicks without times: it cannot become events, so the import
reports how many history entries it left out instead of inventing times.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.sources.records import landing_record, numeric_id


def landing_records(spark: SparkSession, path: str) -> DataFrame:
    lines = spark.read.text(path).select(
        F.col("value").alias("line"), F.col("_metadata.file_path").alias("source_file")
    )
    fields = F.split("line", "\t")
    parsed = lines.select(
        "line",
        "source_file",
        (F.size(fields) == 5).alias("mappable"),
        F.get(fields, 0).alias("impression_id"),
        numeric_id(F.get(fields, 1), "U").alias("user_id"),
        F.unix_millis(F.try_to_timestamp(F.get(fields, 2), F.lit("M/d/yyyy h:mm:ss a"))).alias("ts"),
        F.get(fields, 2).alias("time_text"),
        F.split(F.trim(F.get(fields, 4)), " ").alias("shown"),
    )
    shown = parsed.select("*", F.posexplode_outer("shown").alias("position", "entry"))
    entry = F.split("entry", "-")
    common = {
        "user_id": F.col("user_id"),
        "item_id": numeric_id(F.get(entry, 0), "N"),
        "ts": F.coalesce(F.col("ts").cast("string"), F.col("time_text")),
        "impression_id": F.col("impression_id"),
        "position": F.col("position"),
    }
    key = F.concat_ws("-", "impression_id", "position")
    impression = landing_record(event_id=F.concat(F.lit("mind-imp-"), key), event_type=F.lit("impression"), **common)
    click = landing_record(event_id=F.concat(F.lit("mind-clk-"), key), event_type=F.lit("click"), **common)
    records = F.when(~F.col("mappable"), F.array(F.col("line"))).when(
        F.get(entry, 1) == "1", F.array(impression, click)
    ).otherwise(F.array(impression))
    # One unmappable line is one record, however many entries it would have had.
    unmappable_once = F.col("mappable") | (F.coalesce(F.col("position"), F.lit(0)) == 0)
    return shown.where(unmappable_once).select(F.explode(records).alias("raw"), "source_file")


def history_entries_left_out(spark: SparkSession, path: str) -> int:
    fields = F.split("value", "\t")
    history = F.trim(F.get(fields, 3))
    return (
        spark.read.text(path)
        .where(F.size(fields) == 5)
        .agg(F.sum(F.when(history == "", 0).otherwise(F.size(F.split(history, " ")))))
        .first()[0]
        or 0
    )
