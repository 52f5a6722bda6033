"""The table catalog: every Delta table's name, Arrow schema, row key and
partitioning, in one place.

The suites hold staged batches to these schemas, the writers that build Arrow
tables (scores, ledger, leases, quality, evaluations, projections) write them,
the Spark UDFs return them (pipelines.lakehouse.spark_schema) and the feature
views type their features from them (features.definitions, and Feast's repo
generated from it). A new column is one line here. Importable without Spark.
"""

from __future__ import annotations

import dataclasses
import functools
import re

import pyarrow as pa


def _list(of: pa.DataType) -> pa.DataType:
    """A list whose elements are never null (Spark: array<...> without nulls)."""
    return pa.list_(pa.field("element", of, nullable=False))


def _fields(*spec: tuple) -> list[pa.Field]:
    """(name, type) or (name, type, nullable) tuples -> fields, nullable unless said."""
    return [pa.field(name, kind, nullable=rest[0] if rest else True) for name, kind, *rest in spec]


_UTC = pa.timestamp("us", tz="UTC")
# The row group a read of a few keys decodes (bench/feature_reads.py, README).
LOOKUP_ROW_GROUP_BYTES = 4 << 20
_NOT_NULL = False


_TABLE_NAME = re.compile(r"[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)+")


@dataclasses.dataclass(frozen=True)
class TableSpec:
    name: str
    schema: pa.Schema
    # The column a job's rerun replaces by (a date for dated tables).
    partition_column: str
    # The columns that name a row (unique in a published batch where a suite says so).
    key: tuple[str, ...] = ()
    # Tables holding rows of several item-embedding versions per date (BSE):
    # the column naming it; each version of a date is published on its own.
    embedding_version_column: str | None = None
    # Tables the feature store reads by key: each file's rows sorted by the key
    # in row groups of about this many bytes, so a read of a few keys decodes
    # the row groups whose key statistics hold them, not the date's whole file.
    lookup_row_group_bytes: int | None = None

    def __post_init__(self) -> None:
        # A table's folder is <lakehouse>/<name>: never outside the lakehouse, never an absolute path.
        if not _TABLE_NAME.fullmatch(self.name):
            raise ValueError(f"table name {self.name!r}: must be layer/name, lowercase words (no '..', no absolute path)")

    @functools.cached_property
    def columns(self) -> dict[str, str]:
        """Each column's Spark SQL type, as Spark names it (`simpleString`)."""
        return {f.name: spark_type_name(f.type) for f in self.schema}

    def arrow(self, *names: str) -> pa.Schema:
        """The schema of `names` only, in that order."""
        return pa.schema([self.schema.field(n) for n in names])


def spark_type_name(kind: pa.DataType) -> str:
    """The Spark SQL name of an Arrow type ("bigint", "array<float>", ...)."""
    if pa.types.is_list(kind):
        return f"array<{spark_type_name(kind.value_type)}>"
    if pa.types.is_map(kind):
        return f"map<{spark_type_name(kind.key_type)},{spark_type_name(kind.item_type)}>"
    if pa.types.is_timestamp(kind):
        return "timestamp" if kind.tz else "timestamp_ntz"
    names = {pa.int32(): "int", pa.int64(): "bigint", pa.float32(): "float", pa.float64(): "double",
             pa.string(): "string", pa.bool_(): "boolean", pa.date32(): "date"}
    if kind not in names:
        raise TypeError(f"no Spark type for Arrow {kind}")
    return names[kind]


# One landing record, one JSON object per line, as upstream writers (the
# generator, the adapters) write it: `ts` is event time in epoch milliseconds
# (UTC), `dwell_ms` the upstream's dwell where it measures one, `scroll_pct`
# how far down the item's page the user scrolled (0-100) where it logs that.
# Non-nullable fields are required: a record without one is rejected. A
# column added here later is nullable: the writers add it to tables made
# before it (pipelines.lakehouse.writes).
LANDING_RECORD = pa.schema(_fields(
    ("event_id", pa.string(), _NOT_NULL), ("event_type", pa.string(), _NOT_NULL), ("user_id", pa.int64(), _NOT_NULL),
    ("item_id", pa.int64(), _NOT_NULL), ("ts", pa.int64(), _NOT_NULL), ("category_id", pa.int32()),
    ("impression_id", pa.string()), ("position", pa.int32()), ("dwell_ms", pa.int64()), ("content_length", pa.int32()),
    ("scroll_pct", pa.float32()),
))
# What ingest adds to every row: where it came from and when it landed.
_LINEAGE = _fields(
    ("source", pa.string(), _NOT_NULL), ("source_file", pa.string(), _NOT_NULL), ("ingest_ts", _UTC, _NOT_NULL),
    ("landing_date", pa.date32(), _NOT_NULL),
)
_ENGAGEMENT = ("impressions", pa.int64()), ("clicks", pa.int64()), ("actions", pa.int64()), ("ctr", pa.float64()), (
    "dwell_mean_ms", pa.float64())
# A user's history and engagement as of the day before, as examples and candidates carry them.
_HISTORY = _fields(
    ("long_item_ids", _list(pa.int64())), ("long_category_ids", _list(pa.int32())),
    ("long_timestamps", _list(pa.int64())), ("short_item_ids", _list(pa.int64())),
    ("short_category_ids", _list(pa.int32())),
    *((f"{who}_{name}", kind) for who in ("user", "item") for name, kind in _ENGAGEMENT),
)
_BSE_SUMS = _fields(
    ("long_bse", _list(pa.float32())), ("bse_version", pa.string()), ("bse_trained_through", pa.date32()),
    ("bse_projection_sha256", pa.string()),
)

BRONZE_EVENTS = TableSpec("bronze/events", pa.schema([
    *LANDING_RECORD, *_fields(("event_ts", _UTC, _NOT_NULL), ("event_date", pa.date32(), _NOT_NULL)), *_LINEAGE,
]), "landing_date", ("event_id", "landing_date"))
BRONZE_EVENTS_REJECTED = TableSpec("bronze/events_rejected", pa.schema([
    *_fields(("raw", pa.string()), ("reason", pa.string(), _NOT_NULL), ("reason_detail", pa.string())), *_LINEAGE,
]), "landing_date")
SILVER_EVENTS = TableSpec("silver/events", pa.schema(_fields(
    ("event_id", pa.string()), ("event_type", pa.string()), ("user_id", pa.int64()), ("item_id", pa.int64()),
    ("ts", pa.int64()), ("event_ts", _UTC), ("category_id", pa.int32()), ("impression_id", pa.string()),
    ("position", pa.int32()), ("dwell_ms", pa.int64()), ("dwell_source", pa.string()), ("content_length", pa.int32()),
    ("scroll_pct", pa.float32()), ("session_id", pa.string()), ("noise_reason", pa.string()), ("source", pa.string()), ("source_file", pa.string()),
    ("landing_date", pa.date32()), ("ingest_ts", _UTC), ("event_date", pa.date32()),
)), "event_date", ("event_id", "event_date"))
SILVER_NOISE_METRICS = TableSpec("silver/noise_metrics", pa.schema(_fields(
    ("event_date", pa.date32()), ("event_type", pa.string()), ("noise_reason", pa.string()), ("events", pa.int64()),
)), "event_date", ("event_date", "event_type", "noise_reason"))
GOLD_USER_SEQUENCES = TableSpec("gold/user_sequences", pa.schema(_fields(
    ("user_id", pa.int64()), ("item_ids", _list(pa.int64())), ("category_ids", _list(pa.int32())),
    ("timestamps", _list(pa.int64())), ("dwell_ms", pa.list_(pa.int64())), ("actions", _list(pa.string())),
    ("length", pa.int32()), ("as_of_date", pa.date32()),
)), "as_of_date", ("user_id", "as_of_date"), lookup_row_group_bytes=LOOKUP_ROW_GROUP_BYTES)
GOLD_USER_STATS = TableSpec("gold/user_stats", pa.schema(_fields(
    ("user_id", pa.int64()), *((f"user_{name}", kind) for name, kind in _ENGAGEMENT), ("as_of_date", pa.date32()),
)), "as_of_date", ("user_id", "as_of_date"), lookup_row_group_bytes=LOOKUP_ROW_GROUP_BYTES)
GOLD_ITEM_STATS = TableSpec("gold/item_stats", pa.schema(_fields(
    ("item_id", pa.int64()), *((f"item_{name}", kind) for name, kind in _ENGAGEMENT), ("category_id", pa.int32()),
    ("as_of_date", pa.date32()),
)), "as_of_date", ("item_id", "as_of_date"), lookup_row_group_bytes=LOOKUP_ROW_GROUP_BYTES)
GOLD_BSE_PROJECTIONS = TableSpec("gold/bse_projections", pa.schema(_fields(
    ("version", pa.string()), ("dim", pa.int32()), ("signatures", pa.int32()), ("bits", pa.int32()),
    ("seed", pa.int64()), ("values", pa.list_(pa.float32())), ("sha256", pa.string()),
)), "version", ("version",))
GOLD_ITEM_EMBEDDINGS = TableSpec("gold/item_embeddings", pa.schema(_fields(
    ("item_id", pa.int64(), _NOT_NULL), ("version", pa.string(), _NOT_NULL), ("vector", _list(pa.float32()), _NOT_NULL),
)), "version", ("item_id", "version"))
GOLD_ITEM_SIGNATURES = TableSpec("gold/item_signatures", pa.schema(_fields(
    ("item_id", pa.int64(), _NOT_NULL), ("version", pa.string(), _NOT_NULL), ("codes", _list(pa.int32()), _NOT_NULL),
    ("projection_sha256", pa.string(), _NOT_NULL),
)), "version", ("item_id", "version"))
GOLD_USER_BSE = TableSpec("gold/user_bse", pa.schema(_fields(
    ("user_id", pa.int64(), _NOT_NULL), ("as_of_date", pa.date32(), _NOT_NULL), ("hash_index", pa.int32(), _NOT_NULL),
    ("code", pa.int32(), _NOT_NULL), ("count", pa.int64(), _NOT_NULL), ("vector_sum", _list(pa.float32()), _NOT_NULL),
    ("version", pa.string()), ("projection_sha256", pa.string()),
)), "as_of_date", ("user_id", "as_of_date", "version", "hash_index", "code"), embedding_version_column="version",
    lookup_row_group_bytes=LOOKUP_ROW_GROUP_BYTES)
GOLD_TRAINING_EXAMPLES = TableSpec("gold/training_examples", pa.schema([
    *_fields(
        ("item_id", pa.int64()), ("features_as_of", pa.date32()), ("user_id", pa.int64()),
        ("impression_id", pa.string()), ("position", pa.int32()), ("category_id", pa.int32()),
        ("content_length", pa.int32()), ("source", pa.string()), ("impression_ts", pa.int64()),
        ("event_date", pa.date32()), ("label", pa.int32()), ("label_mode", pa.string()),
    ),
    *_HISTORY, *_BSE_SUMS,
]), "event_date", ("user_id", "impression_id", "position", "item_id", "event_date"))
GOLD_CANDIDATES = TableSpec("gold/candidates", pa.schema([
    *_fields(
        ("features_as_of", pa.date32()), ("item_id", pa.int64()), ("user_id", pa.int64()),
        ("impression_id", pa.string()), ("category_id", pa.int32()), ("candidate_source", pa.string()),
        ("position", pa.int32()), ("impression_ts", pa.int64()),
    ),
    *_HISTORY,
    *_fields(("short_timestamps", _list(pa.int64())), ("long_length", pa.int32()), ("long_category_share", pa.float64())),
    *_BSE_SUMS, pa.field("score_date", pa.date32()),
]), "score_date", ("user_id", "item_id", "score_date"))
SCORES_CTR = TableSpec("scores/ctr", pa.schema(_fields(
    ("user_id", pa.int64()), ("item_id", pa.int64()), ("candidate_source", pa.string()), ("score", pa.float64()),
    ("model_version", pa.string()), ("score_date", pa.date32()),
)), "score_date", ("user_id", "item_id", "score_date"), lookup_row_group_bytes=LOOKUP_ROW_GROUP_BYTES)
# The run ledger (pipelines.lakehouse.ledger): one row per finished run.
OPS_RUNS = TableSpec("ops/runs", pa.schema([
    *_fields(("stage", pa.string(), _NOT_NULL), ("run_id", pa.string(), _NOT_NULL), ("source", pa.string())),
    # Every date the run rewrote, and those it was run for (a night D rewrites
    # D - lookback .. D and is run for D): the others it only restated.
    pa.field("dates", pa.list_(pa.date32()), nullable=False),
    pa.field("nights", pa.list_(pa.date32())),
    # The item embeddings behind the rows it wrote (BSE tables hold one version per run).
    pa.field("embedding_version", pa.string()),
    # The ingest_ts a publishing run stamped on every row it wrote.
    pa.field("written_ts", pa.timestamp("us")),
    *_fields(
        ("table_versions", pa.map_(pa.string(), pa.int64()), _NOT_NULL), ("figures", pa.string(), _NOT_NULL),
        ("started_at", pa.timestamp("us"), _NOT_NULL), ("finished_at", pa.timestamp("us"), _NOT_NULL),
    ),
]), "stage", ("stage", "run_id"))
# The writer lease's claims, renewals and releases (pipelines.lakehouse.lease).
OPS_LEASES = TableSpec("ops/leases", pa.schema([
    # The day of the row's event: readers look only at the days a live claim can be from.
    pa.field("day", pa.date32(), nullable=False),
    *_fields(
        ("lease_id", pa.string(), _NOT_NULL), ("event", pa.string(), _NOT_NULL),  # claim | renew | release
        ("command", pa.string(), _NOT_NULL), ("host", pa.string(), _NOT_NULL), ("pid", pa.int64(), _NOT_NULL),
        ("process_started_at", pa.timestamp("us"), _NOT_NULL), ("at", pa.timestamp("us"), _NOT_NULL),
        ("expires_at", pa.timestamp("us")),  # claims and renewals
    ),
    # finished | skipped: why | failed: why | refused: held by whom (releases)
    pa.field("outcome", pa.string()),
]), "day", ("lease_id", "event", "at"))
# One row per validated table and date (pipelines.quality.gate).
OPS_QUALITY = TableSpec("ops/quality", pa.schema(_fields(
    ("date", pa.date32(), _NOT_NULL), ("table", pa.string(), _NOT_NULL), ("first_date", pa.date32()),
    ("run_id", pa.string()), ("validated_at", pa.timestamp("us")), ("success", pa.bool_()), ("evaluated", pa.int64()),
    ("failed", pa.int64()), ("rows", pa.int64()), ("seconds", pa.float64()), ("failed_expectations", pa.string()),
    ("outcomes", pa.string()),
)), "date", ("date", "table", "run_id"))
# The predictions of each model evaluation (gate, evaluate model), one row per example.
OPS_EVALUATIONS = TableSpec("ops/evaluations", pa.schema(_fields(
    ("eval_date", pa.date32(), _NOT_NULL), ("model_version", pa.string(), _NOT_NULL), ("model", pa.string()),
    ("user_id", pa.int64()), ("impression_id", pa.string()), ("item_id", pa.int64()), ("label", pa.int32()),
    ("probability", pa.float32()), ("evaluated_at", pa.timestamp("us")),
)), "eval_date", ("eval_date", "model_version", "user_id", "impression_id", "item_id"))

# One row per `seqlake forget` request (pipelines.stages.forget): who asked,
# when, which users, the version of each table its delete committed and how
# many rows it removed, the model versions trained on data that held them.
# The user ids stay so that every reader leaves them out of the versions kept
# for time travel until VACUUM removes those.
OPS_FORGET_REQUESTS = TableSpec("ops/forget_requests", pa.schema([
    pa.field("day", pa.date32(), nullable=False),
    *_fields(("request_id", pa.string(), _NOT_NULL), ("requested_by", pa.string(), _NOT_NULL),
             ("requested_at", pa.timestamp("us"), _NOT_NULL)),
    pa.field("user_ids", pa.list_(pa.int64()), nullable=False),
    pa.field("table_versions", pa.map_(pa.string(), pa.int64()), nullable=False),
    pa.field("rows_deleted", pa.map_(pa.string(), pa.int64()), nullable=False),
    pa.field("model_versions", pa.list_(pa.string()), nullable=False),
    *_fields(("history_retention_hours", pa.int64(), _NOT_NULL), ("vacuumed_at", pa.timestamp("us"), _NOT_NULL)),
]), "day", ("request_id",))

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        BRONZE_EVENTS, BRONZE_EVENTS_REJECTED, SILVER_EVENTS, SILVER_NOISE_METRICS,
        GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS, GOLD_BSE_PROJECTIONS,
        GOLD_ITEM_EMBEDDINGS, GOLD_ITEM_SIGNATURES, GOLD_USER_BSE, GOLD_TRAINING_EXAMPLES, GOLD_CANDIDATES,
        SCORES_CTR, OPS_RUNS, OPS_LEASES, OPS_QUALITY, OPS_EVALUATIONS, OPS_FORGET_REQUESTS,
    )
}


def table_uri(lakehouse: str, table: TableSpec) -> str:
    return f"{lakehouse.rstrip('/')}/{table.name}"
