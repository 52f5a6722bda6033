"""The run ledger (ops/runs): one row per finished job run, appended after its last commit.

A run that died between two commits leaves tables without their ledger row;
readers compare what a table holds with the ledger to tell a finished write
from a half-finished one, and the rerun that replaces it heals it. A run tags
each Delta commit it makes with `Run.commit_tag` (Delta's commit
`userMetadata`): its row records the version of each table that its own last
commit made, not whatever version the table has when the row is written, and
a later run finds the commits of runs that never finished (`unfinished_runs`). A row also
says which of the dates it rewrote the run was run for (`nights`): the first
finished run for a date publishes it (pipelines.lakehouse.publications). The
ledger is a few rows a night: it is read and appended with delta-rs, without
a Spark job.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa
from deltalake import write_deltalake
from deltalake.exceptions import TableNotFoundError

from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.files import delta_rows, delta_table, native_uri
from pipelines.lakehouse.tables import OPS_RUNS, TableSpec, table_uri

if TYPE_CHECKING:  # the ledger is read without Spark too (the feature store, Feast)
    from pyspark.sql import DataFrame, SparkSession


@dataclasses.dataclass(frozen=True)
class Run:
    stage: str
    dates: list[dt.date]
    started_at: dt.datetime
    # The tables the run wrote: the ledger records the version each ended at.
    tables: tuple[TableSpec, ...] = ()
    source: str | None = None
    written_ts: dt.datetime | None = None
    # The dates the run was run for; None: all of `dates`.
    nights: list[dt.date] | None = None
    embedding_version: str | None = None
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def commit_tag(self) -> str:
        """The userMetadata of the run's Delta commits: pass `userMetadata=run.commit_tag` to its writes."""
        return f"{_TAG}{self.stage} {self.run_id}"


_TAG = "seqlake run: "
# How far back in a table's history a rerun looks for the commits of an unfinished run.
_HISTORY_LOOKED_AT = 50


_EPOCH = dt.datetime(1970, 1, 1)


def now_utc() -> dt.datetime:
    """Naive UTC, as Spark stores timestamps in the UTC session time zone."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def record_run(lakehouse: str, run: Run, figures: dict[str, object], finished_at: dt.datetime | None = None) -> None:
    """Append the ledger row of a run whose writes have all committed; it
    finished now (or at `finished_at`, naive UTC, for a run recorded later)."""
    versions = [(spec.name, committed_version(lakehouse, spec, run)) for spec in run.tables]
    row = {
        "stage": [run.stage], "run_id": [run.run_id], "source": [run.source], "dates": [sorted(set(run.dates))],
        "nights": [sorted(set(run.dates if run.nights is None else run.nights))],
        "embedding_version": [run.embedding_version],
        "written_ts": [run.written_ts], "table_versions": [versions],
        "figures": [json.dumps(figures, default=str, sort_keys=True)],
        "started_at": [run.started_at], "finished_at": [finished_at or now_utc()],
    }
    with commit_point(f"append {OPS_RUNS.name}"):
        write_deltalake(
            native_uri(table_uri(lakehouse, OPS_RUNS)), pa.table(row, schema=OPS_RUNS.schema), mode="append", partition_by=["stage"],
            schema_mode="merge",  # a ledger written before `nights` existed gains the column
        )


@contextlib.contextmanager
def recorded_run(lakehouse: str, run: Run) -> Iterator[dict[str, object]]:
    """The figures of a stage's run, for the block to fill in. They start with
    the run's dates: "date" (the night it ran for, or the range), "rewritten"
    (every date it rewrote, for a stage with a look-back) and, for a stage
    whose commits carry its tag, "healed" (the commits of runs that never
    finished, which this one replaces). When the block ends without an error,
    the run's ledger row records the figures and "seconds" is added for the
    job's summary; a run that fails leaves no row."""
    started = time.perf_counter()
    nights = sorted(set(run.dates if run.nights is None else run.nights))
    figures: dict[str, object] = {"date": nights[0].isoformat() if len(nights) == 1 else f"{nights[0]}..{nights[-1]}"}
    if run.nights is not None:
        figures["rewritten"] = f"{min(run.dates)}..{max(run.dates)}"
    if run.tables:
        figures["healed"] = unfinished_runs(lakehouse, run.stage, run.tables)
    yield figures
    record_run(lakehouse, run, figures)
    figures["seconds"] = round(time.perf_counter() - started, 2)


def committed_version(lakehouse: str, table: TableSpec, run: Run) -> int:
    """The version of `table` that `run`'s last tagged commit made; the table's
    current version when the run committed nothing to it under its tag."""
    delta = delta_table(lakehouse, table)
    for commit in delta.history(_HISTORY_LOOKED_AT):
        if commit.get("userMetadata") == run.commit_tag:
            return int(commit["version"])
    return delta.version()


def unfinished_runs(lakehouse: str, stage: str, tables: tuple[TableSpec, ...]) -> list[str]:
    """"table vN by run ID" for each commit to `tables` made, since the last
    commit of a finished run of `stage`, by a run of `stage` that has no
    ledger row: a run killed between its commits (or one still running). A
    rerun of the same dates replaces what it wrote; once a run of the stage
    finishes, what came before it is healed."""
    finished = set(ledger_rows(lakehouse, stage).column("run_id").to_pylist())
    found = []
    for table in tables:
        try:
            history = delta_table(lakehouse, table).history(_HISTORY_LOOKED_AT)
        except TableNotFoundError:
            continue
        for commit in sorted(history, key=lambda c: c["version"], reverse=True):
            tag = commit.get("userMetadata") or ""
            if not tag.startswith(f"{_TAG}{stage} "):
                continue
            run_id = tag.rsplit(" ", 1)[-1]
            if run_id in finished:
                break
            found.append(f"{table.name} v{commit['version']} by run {run_id}")
    return sorted(found)


def run_nights(row: dict) -> list[dt.date]:
    """The nights a ledger row's run was run for; in a ledger written before
    runs recorded them, every date it wrote."""
    return row["dates"] if row.get("nights") is None else row["nights"]


def ledger_rows(lakehouse: str, stage: str | None = None) -> pa.Table:
    """Every ledger row of `stage` (of every stage by default), empty when no run has finished yet."""
    try:
        table = delta_table(lakehouse, OPS_RUNS)
    except TableNotFoundError:
        return OPS_RUNS.schema.empty_table()
    return delta_rows(table, filters=[("stage", "=", stage)] if stage else None)


def newest_run(lakehouse: str, stage: str, day: dt.date) -> dict | None:
    """The ledger row of the newest finished run of `stage` whose last date is `day`."""
    rows = [r for r in ledger_rows(lakehouse, stage).to_pylist() if r["dates"] and max(r["dates"]) == day]
    return max(rows, key=lambda r: r["finished_at"]) if rows else None


def night_figures(lakehouse: str, stage: str, day: dt.date) -> dict | None:
    """The figures of the newest finished run of `stage` whose last date is `day`."""
    run = newest_run(lakehouse, stage, day)
    return json.loads(run["figures"]) if run else None


def finished_writes(spark: SparkSession, lakehouse: str, stage: str) -> DataFrame:
    """(source, date, written_us) of every date that a finished run of `stage`
    wrote, written_us being its written_ts in microseconds since the epoch (UTC)."""
    rows = [
        (row["source"], day, (row["written_ts"] - _EPOCH) // dt.timedelta(microseconds=1))
        for row in ledger_rows(lakehouse, stage).select(["source", "dates", "written_ts"]).to_pylist()
        for day in row["dates"]
    ]
    return spark.createDataFrame(rows, "source string, date date, written_us long")
