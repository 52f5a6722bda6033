"""The writer lease of a lakehouse (ops/leases): one job writes at a time.

The nightly DAG, the backfill DAG, `seqlake run` and anyone's ad-hoc job write
the same tables. Two writers of the same dates would interleave their
replaceWhere commits, each validated on its own and the pair on nothing, and
the figures each records would describe rows the other replaced. So every job
that writes takes the lakehouse's lease first and gives it back when it ends,
whatever the outcome; a second writer is refused at once (LakehouseBusy, exit
5, which Airflow retries after its delay) with the holder named. Both
outcomes stay in ops/leases: a claim row and a release row per job.

The lease is a Delta table, so that it holds wherever the lakehouse lives (a
local folder, an object store) and needs no service beside it: a claim is a
row appended in a commit of its own, and Delta's log puts the commits in one
order. After committing its claim, a job reads the log: among the claims still
live, the one with the lowest commit version holds the lease, and any other
withdraws. Two jobs that claim at the same instant both see both claims and
agree on the holder. A claim is live until its release row, until it expires
(the task timeout after it was claimed: the orchestrator has killed the job by
then) or, on the host that claimed it, until its process is gone - so a job
killed mid-write does not block the rerun that heals it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from pipelines.errors import LakehouseBusy, NothingToDo
from pipelines.lakehouse.files import delta_rows, native_uri
from pipelines.lakehouse.ledger import now_utc
from pipelines.lakehouse.tables import OPS_LEASES, table_uri

LEASES_SCHEMA = pa.schema(
    [
        # The day of the row's event: readers look only at the days a live claim can be from.
        pa.field("day", pa.date32(), nullable=False),
        pa.field("lease_id", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),  # claim | release
        pa.field("command", pa.string(), nullable=False),
        pa.field("host", pa.string(), nullable=False),
        pa.field("pid", pa.int64(), nullable=False),
        pa.field("process_started_at", pa.timestamp("us"), nullable=False),
        pa.field("at", pa.timestamp("us"), nullable=False),
        pa.field("expires_at", pa.timestamp("us")),  # claims
        # finished | skipped: why | failed: why | refused: held by whom (releases)
        pa.field("outcome", pa.string()),
    ]
)

_TAG = "seqlake lease: "
# How far back in the log a claim's commit version is looked for; a live claim
# not found there is older than every claim that is, and so holds the lease.
_HISTORY_LOOKED_AT = 500
_OUTCOME_CHARS = 500


@dataclasses.dataclass(frozen=True)
class Claim:
    lease_id: str
    command: str
    host: str
    pid: int
    process_started_at: dt.datetime
    at: dt.datetime
    expires_at: dt.datetime

    def describe(self) -> str:
        return f"{self.command!r} (pid {self.pid} on {self.host}, since {self.at:%Y-%m-%d %H:%M:%S} UTC, lease {self.lease_id})"


def this_process_claim(command: str, lifetime: dt.timedelta, now: dt.datetime) -> Claim:
    started = dt.datetime.fromtimestamp(psutil.Process().create_time(), dt.UTC).replace(tzinfo=None)
    return Claim(uuid.uuid4().hex, command, socket.gethostname(), os.getpid(), started, now, now + lifetime)


def process_alive(host: str, pid: int, started_at: dt.datetime) -> bool:
    """False only when the claim's process is certainly gone: on this host, no
    process of that pid that started then (a pid is reused after a while)."""
    if host != socket.gethostname():
        return True
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = dt.datetime.fromtimestamp(process.create_time(), dt.UTC).replace(tzinfo=None)
    except psutil.NoSuchProcess:
        return False
    return abs(started - started_at) < dt.timedelta(seconds=1)


def holder(
    claims: list[Claim],
    released: set[str],
    versions: dict[str, int],
    now: dt.datetime,
    alive: Callable[[Claim], bool],
) -> Claim | None:
    """The live claim that holds the lease: not released, not expired, its
    process alive, with the lowest commit version (a claim whose version is
    not known is older than every one that is)."""
    live = [c for c in claims if c.lease_id not in released and c.expires_at > now and alive(c)]
    return min(live, key=lambda c: versions.get(c.lease_id, -1), default=None)


@contextmanager
def writer_lease(lakehouse: str, command: str, lifetime: dt.timedelta) -> Iterator[Claim]:
    """Hold the lakehouse's writer lease while the block runs; LakehouseBusy
    (after recording the refusal) when another job holds it."""
    mine = this_process_claim(command, lifetime, now_utc())
    append_event(lakehouse, mine, "claim", mine.at)
    claims, released, versions = _lease_log(lakehouse, since=mine.at - lifetime)
    holding = holder(claims, released, versions, now_utc(), lambda c: c.lease_id == mine.lease_id or _alive(c))
    if holding is not None and holding.lease_id != mine.lease_id:
        refusal = f"refused: held by {holding.describe()}"
        append_event(lakehouse, mine, "release", now_utc(), refusal)
        raise LakehouseBusy(f"the lakehouse is being written by {holding.describe()}: retry once it ends")
    outcome = "finished"
    try:
        yield mine
    except NothingToDo as reason:
        outcome = f"skipped: {reason}"
        raise
    except BaseException as failure:
        outcome = f"failed: {type(failure).__name__}: {failure}"
        raise
    finally:
        append_event(lakehouse, mine, "release", now_utc(), outcome[:_OUTCOME_CHARS])


def lease_events(lakehouse: str) -> list[dict]:
    """Every row of ops/leases, oldest first (empty before the first claim)."""
    try:
        table = DeltaTable(native_uri(table_uri(lakehouse, OPS_LEASES)))
    except TableNotFoundError:
        return []
    return sorted(delta_rows(table).to_pylist(), key=lambda r: (r["at"], r["event"] == "release"))


def _alive(claim: Claim) -> bool:
    return process_alive(claim.host, claim.pid, claim.process_started_at)


def append_event(lakehouse: str, claim: Claim, event: str, at: dt.datetime, outcome: str | None = None) -> None:
    """Log a claim or a release (with its outcome) in a commit of its own, tagged with the event and lease."""
    row = {
        "day": [at.date()], "lease_id": [claim.lease_id], "event": [event], "command": [claim.command],
        "host": [claim.host], "pid": [claim.pid], "process_started_at": [claim.process_started_at], "at": [at],
        "expires_at": [claim.expires_at if event == "claim" else None], "outcome": [outcome],
    }
    write_deltalake(
        native_uri(table_uri(lakehouse, OPS_LEASES)), pa.table(row, schema=LEASES_SCHEMA), mode="append",
        partition_by=["day"], commit_properties=CommitProperties(custom_metadata={"userMetadata": f"{_TAG}{event} {claim.lease_id}"}),
    )


def _lease_log(lakehouse: str, since: dt.datetime) -> tuple[list[Claim], set[str], dict[str, int]]:
    """(claims, released lease ids, claim commit versions) of the events since
    `since`: a claim made before it has expired, and its release came after it."""
    table = DeltaTable(native_uri(table_uri(lakehouse, OPS_LEASES)))
    rows = delta_rows(table, filters=[("day", ">=", since.date())]).to_pylist()
    claims = [
        Claim(r["lease_id"], r["command"], r["host"], r["pid"], r["process_started_at"], r["at"], r["expires_at"])
        for r in rows if r["event"] == "claim"
    ]
    released = {r["lease_id"] for r in rows if r["event"] == "release"}
    versions = {}
    for commit in table.history(_HISTORY_LOOKED_AT):
        event, _, lease_id = (commit.get("userMetadata") or "").removeprefix(_TAG).partition(" ")
        if event == "claim":
            versions[lease_id] = int(commit["version"])
    return claims, released, versions
