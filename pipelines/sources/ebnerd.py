"""EB-NeRD (Ekstra Bladet): behaviors.parquet and history.parquet.

behaviors: one row per impression: article_ids_inview are the impressions (in
list order, the position), article_ids_clicked the clicks. read_time and
scroll_percentage are of the page the impression was shown on (article_id;
the front page where it is null), not of the click: the clicked article's are
next_read_time and next_scroll_percentage (seconds; percent of the page), and
with two articles clicked it is not said which one they are of. history: per
user, the clicks before the behavior log, with their read times and scroll
depths. Articles' lengths are not part of these two files.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.sources.records import landing_record, with_source_file


def landing_records(spark: SparkSession, folder: str) -> DataFrame:
    behaviors = with_source_file(spark.read.parquet(f"{folder}/behaviors.parquet"))
    history = with_source_file(spark.read.parquet(f"{folder}/history.parquet"))

    def shown(kind: str, **fields) -> dict:
        """Fields of an event on `article` of the impression row."""
        return {
            "event_id": F.concat_ws("-", F.lit(f"eb-{kind}"), F.col("impression_id"), F.col("article")),
            "user_id": F.col("user_id"),
            "item_id": F.col("article"),
            # EB-NeRD times are naive local times; read as the session time zone (UTC).
            "ts": F.unix_millis(F.col("impression_time").cast("timestamp")),
            "impression_id": F.col("impression_id").cast("string"),
            **fields,
        }

    impressions = behaviors.select(
        "*", F.posexplode_outer("article_ids_inview").alias("position", "article")
    ).select(
        landing_record(**shown("imp", event_type=F.lit("impression"), position=F.col("position"))).alias("raw"),
        "source_file",
    )
    clicks = behaviors.select("*", F.explode_outer("article_ids_clicked").alias("article")).select(
        landing_record(
            **shown(
                "clk",
                event_type=F.lit("click"),
                position=F.array_position("article_ids_inview", F.col("article")).cast("int") - 1,
                **_read_of(F.col("next_read_time"), F.col("next_scroll_percentage"), F.size("article_ids_clicked") == 1),
            )
        ).alias("raw"),
        "source_file",
    )
    past = history.select(
        "user_id",
        "source_file",
        F.posexplode_outer(
            F.arrays_zip("impression_time_fixed", "article_id_fixed", "read_time_fixed", "scroll_percentage_fixed")
        ).alias("n", "click"),
    ).select(
        landing_record(
            event_id=F.concat_ws("-", F.lit("eb-hist"), F.col("user_id"), F.col("n")),
            event_type=F.lit("click"),
            user_id=F.col("user_id"),
            item_id=F.col("click.article_id_fixed"),
            ts=F.unix_millis(F.col("click.impression_time_fixed").cast("timestamp")),
            **_read_of(F.col("click.read_time_fixed"), F.col("click.scroll_percentage_fixed")),
        ).alias("raw"),
        "source_file",
    )
    return impressions.unionByName(clicks).unionByName(past)


def _read_of(read_time_s: Column, scroll_percentage: Column, known: Column | None = None) -> dict[str, Column]:
    """dwell_ms and scroll_pct of a click from the dataset's read time and
    scroll percentage; left out where they are null, NaN or not `known`."""
    def value(column: Column) -> Column:
        present = column.isNotNull() & ~F.isnan(column)
        return F.when(present if known is None else present & known, column)

    return {"dwell_ms": F.round(value(read_time_s) * 1000).cast("long"), "scroll_pct": value(scroll_percentage).cast("float")}
