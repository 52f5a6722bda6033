"""Building landing records from source columns."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def landing_record(**fields: Column) -> Column:
    """One landing record as JSON; null fields are left out, as an upstream would."""
    return F.to_json(F.struct(*[column.alias(name) for name, column in fields.items()]))


def numeric_id(text: Column, prefix: str) -> Column:
    """'N12345' -> '12345': public datasets prefix their numeric ids with a letter.
    Anything else is passed through, so that ingest names it as a wrong type."""
    return F.when(text.startswith(prefix), F.substring(text, len(prefix) + 1, 1 << 20)).otherwise(text)


def seconds_to_ms(text: Column) -> Column:
    """Epoch seconds as text -> epoch ms as text; a non-number passes through unchanged."""
    return F.when(text.rlike(r"^-?\d+$"), (text.cast("long") * 1000).cast("string")).otherwise(text)


def with_source_file(df: DataFrame) -> DataFrame:
    return df.withColumn("source_file", F.col("_metadata.file_path"))
