"""The table catalog (pipelines.lakehouse.tables): one Arrow schema per table,
read as Spark types by the suites and the UDFs and as feature types by the views."""

from __future__ import annotations

import pyarrow as pa
import pytest

from features.definitions import VIEWS
from pipelines.lakehouse.tables import (
    GOLD_ITEM_EMBEDDINGS,
    GOLD_USER_BSE,
    OPS_RUNS,
    TABLES,
    spark_type_name,
)


def test_arrow_types_are_named_as_spark_names_them():
    assert [spark_type_name(t) for t in (pa.int32(), pa.int64(), pa.float32(), pa.float64(), pa.string(), pa.bool_(),
                                         pa.date32())] == ["int", "bigint", "float", "double", "string", "boolean", "date"]
    assert spark_type_name(pa.list_(pa.list_(pa.float32()))) == "array<array<float>>"
    assert spark_type_name(pa.map_(pa.string(), pa.int64())) == "map<string,bigint>"
    assert spark_type_name(pa.timestamp("us", tz="UTC")) == "timestamp"
    assert spark_type_name(pa.timestamp("us")) == "timestamp_ntz"
    with pytest.raises(TypeError, match="no Spark type for Arrow uint8"):
        spark_type_name(pa.uint8())


def test_a_table_spec_gives_its_columns_key_and_a_projection_of_its_schema():
    assert GOLD_USER_BSE.columns == {
        "user_id": "bigint", "as_of_date": "date", "hash_index": "int", "code": "int", "count": "bigint",
        "vector_sum": "array<float>", "version": "string", "projection_sha256": "string",
    }
    assert GOLD_USER_BSE.arrow("code", "user_id").names == ["code", "user_id"]
    assert OPS_RUNS.columns["table_versions"] == "map<string,bigint>"
    for spec in TABLES.values():
        assert spec.partition_column in spec.schema.names, spec.name
        assert set(spec.key) <= set(spec.schema.names), spec.name


def test_spark_reads_the_catalog_with_its_nullability(spark):
    from pyspark.sql import types as T

    from pipelines.lakehouse.spark_schema import spark_schema

    assert spark_schema(GOLD_ITEM_EMBEDDINGS.schema) == T.StructType([
        T.StructField("item_id", T.LongType(), nullable=False),
        T.StructField("version", T.StringType(), nullable=False),
        T.StructField("vector", T.ArrayType(T.FloatType(), containsNull=False), nullable=False),
    ])
    assert spark_schema(OPS_RUNS.schema)["table_versions"].dataType == T.MapType(T.StringType(), T.LongType())


def test_feature_types_come_from_the_source_tables():
    assert VIEWS["user_stats"].feature_type("user_ctr") == pa.float64()
    assert VIEWS["user_sequence"].feature_type("item_ids").value_type == pa.int64()
    # Several buckets per user and snapshot: each feature is the list of its values.
    assert VIEWS["user_bse"].feature_type("vector_sum") == pa.list_(GOLD_USER_BSE.schema.field("vector_sum").type)
    assert VIEWS["ctr_scores"].key_type("item_id") == pa.int64()
