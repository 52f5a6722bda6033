"""Table names to Delta URIs under the lakehouse root, and how each is partitioned."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class TableSpec:
    name: str
    # The column a job's rerun replaces by (a date for dated tables).
    partition_column: str
    # Tables holding rows of several item-embedding versions per date (BSE):
    # the column naming it; each version of a date is published on its own.
    embedding_version_column: str | None = None


BRONZE_EVENTS = TableSpec("bronze/events", partition_column="landing_date")
BRONZE_EVENTS_REJECTED = TableSpec("bronze/events_rejected", partition_column="landing_date")
SILVER_EVENTS = TableSpec("silver/events", partition_column="event_date")
SILVER_NOISE_METRICS = TableSpec("silver/noise_metrics", partition_column="event_date")
GOLD_USER_SEQUENCES = TableSpec("gold/user_sequences", partition_column="as_of_date")
GOLD_USER_STATS = TableSpec("gold/user_stats", partition_column="as_of_date")
GOLD_ITEM_STATS = TableSpec("gold/item_stats", partition_column="as_of_date")
GOLD_BSE_PROJECTIONS = TableSpec("gold/bse_projections", partition_column="version")
GOLD_ITEM_EMBEDDINGS = TableSpec("gold/item_embeddings", partition_column="version")
GOLD_ITEM_SIGNATURES = TableSpec("gold/item_signatures", partition_column="version")
GOLD_USER_BSE = TableSpec("gold/user_bse", partition_column="as_of_date", embedding_version_column="version")
GOLD_TRAINING_EXAMPLES = TableSpec("gold/training_examples", partition_column="event_date")
GOLD_CANDIDATES = TableSpec("gold/candidates", partition_column="score_date")
SCORES_CTR = TableSpec("scores/ctr", partition_column="score_date")
OPS_RUNS = TableSpec("ops/runs", partition_column="stage")
# The writer lease's claims and releases (pipelines.lakehouse.lease).
OPS_LEASES = TableSpec("ops/leases", partition_column="day")
# One row per validated table and date (pipelines.quality), and the predictions
# of each model evaluation (gate, evaluate model), one row per example.
OPS_QUALITY = TableSpec("ops/quality", partition_column="date")
OPS_EVALUATIONS = TableSpec("ops/evaluations", partition_column="eval_date")

TABLES: dict[str, TableSpec] = {
    spec.name: spec
    for spec in (
        BRONZE_EVENTS, BRONZE_EVENTS_REJECTED, SILVER_EVENTS, SILVER_NOISE_METRICS,
        GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS, GOLD_BSE_PROJECTIONS,
        GOLD_ITEM_EMBEDDINGS, GOLD_ITEM_SIGNATURES, GOLD_USER_BSE, GOLD_TRAINING_EXAMPLES, GOLD_CANDIDATES,
        SCORES_CTR, OPS_RUNS, OPS_LEASES, OPS_QUALITY, OPS_EVALUATIONS,
    )
}


def table_uri(lakehouse: str, table: TableSpec) -> str:
    return f"{lakehouse.rstrip('/')}/{table.name}"
