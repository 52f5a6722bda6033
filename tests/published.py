"""Hand-built publications: snapshot rows written to a Delta table, then the
ledger row of the run that published them, at an instant the test chooses."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
from deltalake import write_deltalake

from pipelines.lakehouse.ledger import Run, record_run
from pipelines.lakehouse.tables import TableSpec, table_uri


def naive_utc(moment: dt.datetime | str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def write_rows(lakehouse: str, table: TableSpec, rows: dict, replacing: dt.date | None = None) -> None:
    """Append `rows` to `table` (or replace its partition `replacing` with them)."""
    uri = table_uri(lakehouse, table)
    if replacing is None:
        write_deltalake(uri, pa.table(rows), partition_by=[table.partition_column], mode="append")
    else:
        write_deltalake(uri, pa.table(rows), partition_by=[table.partition_column], mode="overwrite",
                        predicate=f"{table.partition_column} = '{replacing}'")


def publish(lakehouse: str, table: TableSpec, nights: list[dt.date], at: dt.datetime | str,
            restated: list[dt.date] = (), embedding_version: str | None = None) -> None:
    """Record that a run for `nights` (restating `restated` too) finished at `at`,
    leaving `table` at its current version: the nights are published from `at` on."""
    finished = naive_utc(at)
    run = Run("test", [*nights, *restated], finished, tables=(table,), nights=list(nights), embedding_version=embedding_version)
    record_run(lakehouse, run, {"job": "test"}, finished_at=finished)
