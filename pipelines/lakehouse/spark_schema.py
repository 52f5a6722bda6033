"""Spark's view of the catalog's Arrow schemas (pipelines.lakehouse.tables):
the struct a UDF returns or a frame is built with, nullability kept, so that
what Spark writes is the table the catalog declares."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

_SCALARS: dict[pa.DataType, T.DataType] = {
    pa.int32(): T.IntegerType(), pa.int64(): T.LongType(), pa.float32(): T.FloatType(), pa.float64(): T.DoubleType(),
    pa.string(): T.StringType(), pa.bool_(): T.BooleanType(), pa.date32(): T.DateType(),
}


def spark_type(kind: pa.DataType) -> T.DataType:
    if pa.types.is_list(kind):
        return T.ArrayType(spark_type(kind.value_type), containsNull=kind.value_field.nullable)
    if pa.types.is_map(kind):
        return T.MapType(spark_type(kind.key_type), spark_type(kind.item_type), valueContainsNull=kind.item_field.nullable)
    if pa.types.is_timestamp(kind):
        return T.TimestampType() if kind.tz else T.TimestampNTZType()
    if kind not in _SCALARS:
        raise TypeError(f"no Spark type for Arrow {kind}")
    return _SCALARS[kind]


def spark_schema(schema: pa.Schema) -> T.StructType:
    return T.StructType([T.StructField(f.name, spark_type(f.type), nullable=f.nullable) for f in schema])
