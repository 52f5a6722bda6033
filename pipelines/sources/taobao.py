"""Taobao UserBehavior.csv: user_id,item_id,category_id,behavior_type,timestamp.

No header, no dwell (clean derives it). behavior_type pv (a page view of the
item, i.e. a click), cart, fav or buy; timestamp in epoch seconds. The source
has no event id: it is a hash of the whole line, so a line delivered twice is
one event.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.sources.records import landing_record, seconds_to_ms

_ACTIONS = {"pv": "click", "cart": "cart", "fav": "fav", "buy": "buy"}


def landing_records(spark: SparkSession, path: str) -> DataFrame:
    lines = spark.read.text(path).select(
        F.col("value").alias("line"), F.col("_metadata.file_path").alias("source_file")
    )
    fields = F.split(F.trim("line"), ",")
    action = F.trim(F.get(fields, 3))
    mapped = F.coalesce(
        *[F.when(action == source, F.lit(target)) for source, target in _ACTIONS.items()], action
    )
    record = landing_record(
        event_id=F.concat(F.lit("tb-"), F.substring(F.sha2("line", 256), 1, 24)),
        event_type=mapped,
        user_id=F.trim(F.get(fields, 0)),
        item_id=F.trim(F.get(fields, 1)),
        category_id=F.trim(F.get(fields, 2)),
        ts=seconds_to_ms(F.trim(F.get(fields, 4))),
    )
    # A line without exactly five fields cannot be mapped: it goes to ingest as
    # it is, and is rejected there as a malformed record.
    return lines.select(
        F.when(F.size(fields) == 5, record).otherwise(F.col("line")).alias("raw"), "source_file"
    )
