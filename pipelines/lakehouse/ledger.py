"""The run ledger (ops/runs): one row per finished job run, appended after its last commit.

A run that died between two commits leaves tables without their ledger row;
readers compare what a table holds with the ledger to tell a finished write
from a half-finished one, and the rerun that replaces it heals it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.lakehouse.tables import OPS_RUNS, TableSpec, table_uri

RUNS_SCHEMA = T.StructType(
    [
        T.StructField("stage", T.StringType(), nullable=False),
        T.StructField("run_id", T.StringType(), nullable=False),
        T.StructField("source", T.StringType()),
        T.StructField("dates", T.ArrayType(T.DateType(), containsNull=False), nullable=False),
        # The ingest_ts a publishing run stamped on every row it wrote.
        T.StructField("written_ts", T.TimestampType()),
        T.StructField("table_versions", T.MapType(T.StringType(), T.LongType()), nullable=False),
        T.StructField("figures", T.StringType(), nullable=False),
        T.StructField("started_at", T.TimestampType(), nullable=False),
        T.StructField("finished_at", T.TimestampType(), nullable=False),
    ]
)


@dataclasses.dataclass(frozen=True)
class Run:
    stage: str
    dates: list[dt.date]
    started_at: dt.datetime
    # The tables the run wrote: the ledger records the version each ended at.
    tables: tuple[TableSpec, ...] = ()
    source: str | None = None
    written_ts: dt.datetime | None = None
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)


def now_utc() -> dt.datetime:
    """Naive UTC, as Spark stores timestamps in the UTC session time zone."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def record_run(spark: SparkSession, lakehouse: str, run: Run, figures: dict[str, object]) -> None:
    """Append the ledger row of a run whose writes have all committed."""
    versions = {
        spec.name: DeltaTable.forPath(spark, table_uri(lakehouse, spec)).history(1).first()["version"]
        for spec in run.tables
    }
    row = (
        run.stage, run.run_id, run.source, sorted(set(run.dates)), run.written_ts, versions,
        json.dumps(figures, default=str, sort_keys=True), run.started_at, now_utc(),
    )
    (
        spark.createDataFrame([row], RUNS_SCHEMA)
        .write.format("delta")
        .mode("append")
        .partitionBy("stage")
        .save(table_uri(lakehouse, OPS_RUNS))
    )


def finished_writes(spark: SparkSession, lakehouse: str, stage: str) -> DataFrame:
    """(source, date, written_ts) of every date that a finished run of `stage` wrote."""
    if not DeltaTable.isDeltaTable(spark, table_uri(lakehouse, OPS_RUNS)):
        return spark.createDataFrame([], "source string, date date, written_ts timestamp")
    return (
        spark.read.format("delta")
        .load(table_uri(lakehouse, OPS_RUNS))
        .where(F.col("stage") == stage)
        .select("source", F.explode("dates").alias("date"), "written_ts")
    )

