"""A lakehouse made before the catalog gained a column (scroll_pct): the next
write adds it, the rows written before read it as null, now and as they were
published, and a clean over old and new bronze carries it to silver."""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from pipelines.errors import SchemaMismatchError
from pipelines.lakehouse.publications import Publication
from pipelines.lakehouse.tables import BRONZE_EVENTS, SILVER_EVENTS, table_uri
from pipelines.lakehouse.writes import read_published, read_table, replace_date_partitions
from pipelines.stages.clean import clean_dates
from tests.bronze_rows import INGEST_TS, T0, at, bronze_frame, write_bronze
from tests.conftest import settings_in

DAY = T0.date()
NEXT = DAY + dt.timedelta(days=1)


def _made_before_scroll_depth(spark, settings, rows: list[dict]) -> str:
    """Bronze of DAY written as a lakehouse made before scroll_pct was: without the column."""
    uri = table_uri(settings.lakehouse, BRONZE_EVENTS)
    bronze_frame(spark, rows).drop("scroll_pct").write.format("delta").partitionBy("landing_date").save(uri)
    return uri


def test_the_next_write_adds_the_column_and_old_rows_read_null(spark, tmp_path):
    settings = settings_in(tmp_path)
    uri = _made_before_scroll_depth(spark, settings, [{"event_id": "old", "dwell_ms": 20_000}])
    assert "scroll_pct" not in spark.read.format("delta").load(uri).columns

    replace_date_partitions(bronze_frame(spark, [{"event_id": "new", "ts": at(86_400), "scroll_pct": 55.0}]),
                            settings.lakehouse, BRONZE_EVENTS, NEXT)

    assert spark.read.format("delta").load(uri).schema["scroll_pct"].dataType.simpleString() == "float"
    assert {r["event_id"]: r["scroll_pct"] for r in read_table(spark, settings.lakehouse, BRONZE_EVENTS).collect()} == {
        "old": None, "new": 55.0}
    # The version published before the column existed reads with it, null.
    before = read_published(spark, settings.lakehouse, BRONZE_EVENTS, [Publication(DAY, 0, INGEST_TS)])
    assert [(r["event_id"], r["scroll_pct"]) for r in before.collect()] == [("old", None)]
    assert before.columns == [f.name for f in BRONZE_EVENTS.schema]


def test_a_table_without_a_required_column_is_refused_not_widened(spark, tmp_path):
    settings = settings_in(tmp_path)
    uri = table_uri(settings.lakehouse, BRONZE_EVENTS)
    bronze_frame(spark, [{}]).drop("scroll_pct", "source").write.format("delta").partitionBy("landing_date").save(uri)
    with pytest.raises(SchemaMismatchError, match=r"lacks the required columns \['source'\]"):
        replace_date_partitions(bronze_frame(spark, [{"ts": at(86_400)}]), settings.lakehouse, BRONZE_EVENTS, NEXT)
    assert spark.read.format("delta").load(uri).count() == 1


def test_clean_over_bronze_from_before_and_after_carries_scroll_depth_to_silver(spark, tmp_path):
    settings = settings_in(tmp_path)
    write_bronze(spark, settings, [{"event_id": "old", "dwell_ms": 20_000}], DAY)
    # Bronze of DAY as an older version wrote it: the ledger row stays, the column goes.
    uri = table_uri(settings.lakehouse, BRONZE_EVENTS)
    spark.read.format("delta").load(uri).drop("scroll_pct").write.format("delta").mode("overwrite") \
        .option("overwriteSchema", "true").partitionBy("landing_date").save(uri)
    clean_dates(spark, settings, DAY)
    silver = table_uri(settings.lakehouse, SILVER_EVENTS)
    spark.read.format("delta").load(silver).drop("scroll_pct").write.format("delta").mode("overwrite") \
        .option("overwriteSchema", "true").partitionBy("event_date").save(silver)

    write_bronze(spark, settings, [{"event_id": "new", "item_id": 2, "ts": at(86_400), "dwell_ms": 20_000, "scroll_pct": 100.0}], NEXT)
    figures = clean_dates(spark, settings, NEXT)

    assert figures["silver_rows"] == 2
    assert {r["event_id"]: r["scroll_pct"] for r in spark.read.format("delta").load(silver).collect()} == {
        "old": None, "new": 100.0}
    # The proxy of the run reads the deep read as evidence.
    assert figures["proxy"]["evidence"] == {"deep_read": 1, "none": 1}
    assert spark.read.format("delta").load(silver).where(F.col("event_id") == "new").first()["dwell_source"] == "observed"
