"""What forgetting users touches: the tables that hold their rows, how a row
of theirs is recognized in each, the audit of requests (ops/forget_requests)
and the set of forgotten users that every reader of retained versions leaves out.

Tables of aggregates over many users (noise metrics, item statistics, item
embeddings and signatures, quality outcomes, run figures) hold no user's rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.files import delta_rows, delta_table, native_uri
from pipelines.lakehouse.tables import (
    BRONZE_EVENTS,
    BRONZE_EVENTS_REJECTED,
    GOLD_CANDIDATES,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    OPS_EVALUATIONS,
    OPS_FORGET_REQUESTS,
    SCORES_CTR,
    SILVER_EVENTS,
    TableSpec,
    table_uri,
)

# Every table with a user_id column, and bronze's rejected lines (raw text).
USER_TABLES: tuple[TableSpec, ...] = (
    BRONZE_EVENTS, BRONZE_EVENTS_REJECTED, SILVER_EVENTS, GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_USER_BSE,
    GOLD_TRAINING_EXAMPLES, GOLD_CANDIDATES, SCORES_CTR, OPS_EVALUATIONS,
)


def user_rows_sql(table: TableSpec, users: Sequence[int]) -> str:
    """The rows of `users` in `table`, as a SQL predicate. A rejected line is
    text: it is the user's when its user_id key holds one of their ids, as a
    number or a numeric string, whether or not the rest of the line parses."""
    ids = sorted({int(u) for u in users})
    if table is BRONZE_EVENTS_REJECTED:
        alternatives = "|".join(str(u) for u in ids)
        return f"raw RLIKE '\"user_id\"\\\\s*:\\\\s*\"?({alternatives})(?![0-9.eE])'"
    return f"user_id IN ({', '.join(str(u) for u in ids)})"


def has_user_rows(table: TableSpec) -> bool:
    return "user_id" in table.columns


def forgotten_users(lakehouse: str) -> frozenset[int]:
    """Every user a forget request named; none before the first request."""
    try:
        return forgotten_in(delta_table(lakehouse, OPS_FORGET_REQUESTS))
    except TableNotFoundError:
        return frozenset()


def forgotten_in(forget_requests: DeltaTable) -> frozenset[int]:
    """Every user the requests of ops/forget_requests (opened) named."""
    rows = delta_rows(forget_requests, columns=["user_ids"])
    return frozenset(u for ids in rows.column("user_ids").to_pylist() for u in ids)


@dataclasses.dataclass(frozen=True)
class ForgetRequest:
    request_id: str
    requested_by: str
    requested_at: dt.datetime  # naive UTC
    user_ids: tuple[int, ...]
    # Per table the delete changed: the version it committed, and the rows it removed.
    table_versions: dict[str, int]
    rows_deleted: dict[str, int]
    model_versions: tuple[str, ...]
    history_retention_hours: int
    vacuumed_at: dt.datetime

    def purged_from_history_by(self) -> dt.datetime:
        """When no retained version holds the users any more: the first VACUUM after this."""
        return self.vacuumed_at if self.history_retention_hours == 0 else (
            self.requested_at + dt.timedelta(hours=self.history_retention_hours))


def record_request(lakehouse: str, request: ForgetRequest) -> None:
    """Append the request's audit row (delta-rs: a few rows a year, no Spark job)."""
    row = {
        "day": [request.requested_at.date()], "request_id": [request.request_id], "requested_by": [request.requested_by],
        "requested_at": [request.requested_at], "user_ids": [list(request.user_ids)],
        "table_versions": [sorted(request.table_versions.items())], "rows_deleted": [sorted(request.rows_deleted.items())],
        "model_versions": [list(request.model_versions)], "history_retention_hours": [request.history_retention_hours],
        "vacuumed_at": [request.vacuumed_at],
    }
    with commit_point(f"append {OPS_FORGET_REQUESTS.name}"):
        write_deltalake(native_uri(table_uri(lakehouse, OPS_FORGET_REQUESTS)), pa.table(row, schema=OPS_FORGET_REQUESTS.schema),
                        mode="append", partition_by=[OPS_FORGET_REQUESTS.partition_column])


def requests(lakehouse: str) -> list[dict[str, object]]:
    """The audit rows, oldest first."""
    try:
        rows = delta_rows(delta_table(lakehouse, OPS_FORGET_REQUESTS)).to_pylist()
    except TableNotFoundError:
        return []
    return sorted(rows, key=lambda r: r["requested_at"])


def data_ranges_holding(ranges: Iterable[tuple[str, str | None]], dates: Iterable[dt.date]) -> list[str]:
    """Of (model version, its data_range "first..last") pairs, the versions whose
    range holds one of `dates` (the dates of the training examples that held
    the users): the models trained on their data."""
    days = sorted(set(dates))
    trained = []
    for version, data_range in ranges:
        if not data_range or ".." not in data_range:
            continue
        first, last = (dt.date.fromisoformat(d) for d in data_range.split(".."))
        if any(first <= day <= last for day in days):
            trained.append(version)
    return trained
