"""Forget: delete users from every table that holds their rows, from the
tables' history, and say which models learnt from them.

One Delete commit per table that holds rows of theirs (tagged `seqlake
forget <request>`), checked by reading the table again; then VACUUM of every
user table with `forget.history_retention_hours`, which removes the files
that only versions older than that still need. Until that has passed, the
versions kept for time travel still hold the users' rows: every reader of
published versions (training sets, the feature store, the stages that read
the night before) leaves the forgotten users out, from the audit table. The
audit row (ops/forget_requests) is appended last: a forget killed before it
has none, and its rerun deletes what is left and records the request.
The model registry tags each version trained on a date that held their
training examples with the request, never with the user ids.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from delta.tables import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines.config import Settings
from pipelines.ctr.registry import client, model_versions
from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.forget import (
    USER_TABLES,
    ForgetRequest,
    data_ranges_holding,
    record_request,
    user_rows_sql,
)
from pipelines.lakehouse.ledger import now_utc
from pipelines.lakehouse.tables import GOLD_TRAINING_EXAMPLES, table_uri
from pipelines.lakehouse.writes import read_table, session_conf, table_exists

FORGOTTEN_TAG = "forget_requests"
_COMMIT_TAG = "spark.databricks.delta.commitInfo.userMetadata"
_RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
# Delta refuses a VACUUM retention under its default (7 days) unless told the reader risk is known.
_DELTA_DEFAULT_RETENTION_HOURS = 168


def forget_users(spark: SparkSession, settings: Settings, users: Sequence[int], requested_by: str) -> dict[str, object]:
    """Remove `users` from every user table and, through VACUUM, from history; record the request."""
    if not users:
        raise ValueError("name at least one user to forget (--user)")
    lakehouse, retention = settings.lakehouse, settings.forget.history_retention_hours
    request_id, requested_at = uuid.uuid4().hex, now_utc()
    present = [t for t in USER_TABLES if table_exists(spark, lakehouse, t)]
    examples_dates = _dates_holding(spark, lakehouse, users) if GOLD_TRAINING_EXAMPLES in present else []

    versions, deleted = {}, {}
    with session_conf(spark, {_COMMIT_TAG: f"seqlake forget {request_id}"}):
        for table in present:
            rows = user_rows_sql(table, users)
            found = read_table(spark, lakehouse, table).where(rows).count()
            if not found:
                continue
            delta = DeltaTable.forPath(spark, table_uri(lakehouse, table))
            with commit_point(f"delete {table.name}"):
                delta.delete(rows)
            left = read_table(spark, lakehouse, table).where(rows).count()
            if left:
                raise RuntimeError(f"{table.name}: {left} rows of the forgotten users remain after the delete")
            versions[table.name] = delta.history(1).first()["version"]
            deleted[table.name] = found

    with session_conf(spark, {_RETENTION_CHECK: str(retention >= _DELTA_DEFAULT_RETENTION_HOURS).lower()}):
        for table in present:
            DeltaTable.forPath(spark, table_uri(lakehouse, table)).vacuum(float(retention))
    vacuumed_at = now_utc()

    trained = data_ranges_holding([(v.version, v.data_range) for v in model_versions(settings)], examples_dates)
    if trained:
        with client(settings) as registry:
            for version in trained:
                before = registry.get_model_version(settings.registry.model_name, version).tags.get(FORGOTTEN_TAG)
                registry.set_model_version_tag(settings.registry.model_name, version, FORGOTTEN_TAG,
                                               ",".join(filter(None, [before, request_id])))

    request = ForgetRequest(request_id, requested_by, requested_at, tuple(sorted(set(users))), versions, deleted,
                            tuple(trained), retention, vacuumed_at)
    record_request(lakehouse, request)
    return {
        "request_id": request_id, "users": len(request.user_ids), "rows_deleted": deleted, "table_versions": versions,
        "tables_checked": len(present), "models_trained_on_them": list(trained),
        "history_retention_hours": retention, "purged_from_history_by": request.purged_from_history_by().isoformat(" "),
    }


def _dates_holding(spark: SparkSession, lakehouse: str, users: Sequence[int]) -> list[dt.date]:
    """The dates of the training examples that hold the users' rows."""
    examples = read_table(spark, lakehouse, GOLD_TRAINING_EXAMPLES).where(user_rows_sql(GOLD_TRAINING_EXAMPLES, users))
    return sorted(r[0] for r in examples.select(F.col(GOLD_TRAINING_EXAMPLES.partition_column)).distinct().collect())
