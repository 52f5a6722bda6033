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
local folder, an object store with delta-rs's conditional put) and needs no
service beside it: a claim is a row appended in a commit of its own, and
Delta's log puts the commits in one order. After committing its claim, a job
reads the log: among the claims still live, the one with the lowest commit
version holds the lease, and any other withdraws. Two jobs that claim at the
same instant both see both claims and agree on the holder.

A claim is live until its release row. A job that dies without one (killed,
its machine lost) stops counting: on the host that claimed, as soon as its
process is gone; seen from another host, once its lease lapses, which the
holder keeps from happening by renewing the claim (a row with a later expiry)
every third of `night.lease_seconds` while it runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import socket
import sys
import threading
import uuid
from collections.abc import Callable, Iterator

import psutil
import pyarrow as pa
from deltalake import CommitProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError

from pipelines.errors import LakehouseBusy, NothingToDo
from pipelines.lakehouse.files import delta_rows, delta_table, native_uri
from pipelines.lakehouse.ledger import now_utc
from pipelines.lakehouse.tables import OPS_LEASES, table_uri
from pipelines.masking import masked

_TAG = "seqlake lease: "
# How far back in the log a claim's commit version is looked for; a live claim
# not found there is older than every claim that is, and so holds the lease.
_HISTORY_LOOKED_AT = 500
# The rows read: a live claim was claimed or renewed within its lease, and no
# job's lease (whatever its settings) is longer than a day.
_LOOKED_BACK = dt.timedelta(days=1)
_OUTCOME_CHARS = 500


@dataclasses.dataclass(frozen=True)
class Claim:
    lease_id: str
    command: str
    host: str
    pid: int
    process_started_at: dt.datetime
    at: dt.datetime
    # The expiry of its latest renewal.
    expires_at: dt.datetime

    def describe(self) -> str:
        return f"{self.command!r} (pid {self.pid} on {self.host}, since {self.at:%Y-%m-%d %H:%M:%S} UTC, lease {self.lease_id})"


def this_process_claim(command: str, lease: dt.timedelta, now: dt.datetime) -> Claim:
    started = dt.datetime.fromtimestamp(psutil.Process().create_time(), dt.UTC).replace(tzinfo=None)
    return Claim(uuid.uuid4().hex, command, socket.gethostname(), os.getpid(), started, now, now + lease)


def process_alive(pid: int, started_at: dt.datetime) -> bool:
    """Whether this host still runs the process `pid` that started at
    `started_at` (a pid is reused after a while); True when it cannot tell."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        started = dt.datetime.fromtimestamp(process.create_time(), dt.UTC).replace(tzinfo=None)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return abs(started - started_at) < dt.timedelta(seconds=1)


def holder(
    claims: list[Claim],
    released: set[str],
    versions: dict[str, int],
    now: dt.datetime,
    local_host: str,
    alive: Callable[[Claim], bool],
) -> Claim | None:
    """The live claim that holds the lease: not released and, if made on
    `local_host`, its process alive (however long it has run), else its
    lease not lapsed; the live one with the lowest commit version (a claim
    whose version is not known is older than every one that is)."""
    live = [
        c for c in claims
        if c.lease_id not in released and (alive(c) if c.host == local_host else c.expires_at > now)
    ]
    return min(live, key=lambda c: (versions.get(c.lease_id, -1), c.at, c.lease_id), default=None)


@contextlib.contextmanager
def writer_lease(lakehouse: str, command: str, lease: dt.timedelta) -> Iterator[Claim]:
    """Hold the lakehouse's writer lease while the block runs, renewing it
    every third of `lease`; LakehouseBusy (after recording the refusal) when
    another job holds it. The release row records how the block ended."""
    mine = this_process_claim(masked(command), lease, now_utc())
    append_event(lakehouse, mine, "claim", mine.at)
    outcome = "finished"
    try:
        claims, released, versions = _lease_log(lakehouse, since=mine.at - _LOOKED_BACK)
        holding = holder(claims, released, versions, now_utc(), mine.host, lambda c: c.lease_id == mine.lease_id or _alive(c))
        if holding is not None and holding.lease_id != mine.lease_id:
            outcome = f"refused: held by {holding.describe()}"
            raise LakehouseBusy(f"the lakehouse is being written by {holding.describe()}: retry once it ends")
        with _renewed(lakehouse, mine, lease):
            yield mine
    except NothingToDo as reason:
        outcome = f"skipped: {reason}"
        raise
    except BaseException as failure:
        if not outcome.startswith("refused: "):
            outcome = f"failed: {type(failure).__name__}: {failure}"
        raise
    finally:
        _release(lakehouse, mine, outcome)


def lease_events(lakehouse: str) -> list[dict]:
    """Every row of ops/leases in the order they were written (empty before the first claim)."""
    try:
        table = delta_table(lakehouse, OPS_LEASES)
    except TableNotFoundError:
        return []
    order = {"claim": 0, "renew": 1, "release": 2}
    return sorted(delta_rows(table).to_pylist(), key=lambda r: (r["at"], order[r["event"]]))


def append_event(lakehouse: str, claim: Claim, event: str, at: dt.datetime, outcome: str | None = None) -> None:
    """Log a claim, a renewal or a release (with its outcome) in a commit of its own, tagged with the event and lease."""
    row = {
        "day": [at.date()], "lease_id": [claim.lease_id], "event": [event], "command": [claim.command],
        "host": [claim.host], "pid": [claim.pid], "process_started_at": [claim.process_started_at], "at": [at],
        "expires_at": [None if event == "release" else claim.expires_at], "outcome": [outcome],
    }
    write_deltalake(
        native_uri(table_uri(lakehouse, OPS_LEASES)), pa.table(row, schema=OPS_LEASES.schema), mode="append",
        partition_by=["day"], commit_properties=CommitProperties(custom_metadata={"userMetadata": f"{_TAG}{event} {claim.lease_id}"}),
    )


def _alive(claim: Claim) -> bool:
    return process_alive(claim.pid, claim.process_started_at)


def _release(lakehouse: str, claim: Claim, outcome: str) -> None:
    """The release row; a store that refuses it must not replace the job's own
    outcome (the lease then lapses, or ends with the process on this host)."""
    try:
        append_event(lakehouse, claim, "release", now_utc(), masked(outcome)[:_OUTCOME_CHARS])
    except Exception as failure:  # noqa: BLE001 - reported, the job's outcome stands
        print(f"seqlake: the release of lease {claim.lease_id} was not recorded ({masked(str(failure))}); "
              "it lapses on its own", file=sys.stderr)


@contextlib.contextmanager
def _renewed(lakehouse: str, claim: Claim, lease: dt.timedelta) -> Iterator[None]:
    """Renew `claim` every third of `lease` in a daemon thread while the block runs."""
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(lease.total_seconds() / 3):
            now = now_utc()
            try:
                append_event(lakehouse, dataclasses.replace(claim, expires_at=now + lease), "renew", now)
            except Exception as failure:  # noqa: BLE001 - a later renewal may pass; the lease lapses otherwise
                print(f"seqlake: lease {claim.lease_id} not renewed ({masked(str(failure))})", file=sys.stderr)

    thread = threading.Thread(target=renew, name=f"lease-{claim.lease_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _lease_log(lakehouse: str, since: dt.datetime) -> tuple[list[Claim], set[str], dict[str, int]]:
    """(claims, released lease ids, claim commit versions) from the rows
    written since `since`; a claim renewed expires with its latest renewal."""
    table = delta_table(lakehouse, OPS_LEASES)
    rows = delta_rows(table, filters=[("day", ">=", since.date())]).to_pylist()
    held = [r for r in rows if r["event"] != "release"]
    first = {r["lease_id"]: r for r in sorted(held, key=lambda r: r["at"], reverse=True)}
    expiry = {r["lease_id"]: r["expires_at"] for r in sorted(held, key=lambda r: r["expires_at"])}
    claims = [
        Claim(r["lease_id"], r["command"], r["host"], r["pid"], r["process_started_at"], r["at"], expiry[r["lease_id"]])
        for r in first.values()
    ]
    released = {r["lease_id"] for r in rows if r["event"] == "release"}
    versions = {}
    for commit in table.history(_HISTORY_LOOKED_AT):
        event, _, lease_id = (commit.get("userMetadata") or "").removeprefix(_TAG).partition(" ")
        if event == "claim":
            versions[lease_id] = int(commit["version"])
    return claims, released, versions
