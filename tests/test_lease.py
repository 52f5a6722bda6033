"""The lakehouse's writer lease: one job writes at a time, a second is refused
with the holder named, both outcomes stay in ops/leases, and a lease whose job
is gone (released, expired, killed on this host) blocks nobody."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import time

import psutil
import pytest

from pipelines.errors import LakehouseBusy, NothingToDo
from pipelines.lakehouse.lease import (
    Claim,
    append_event,
    holder,
    lease_events,
    this_process_claim,
    writer_lease,
)

NOON = dt.datetime(2026, 11, 2, 12, 0)
HOUR = dt.timedelta(hours=1)


def claim(lease_id: str, at: dt.datetime = NOON, host: str = "worker-1", pid: int = 100) -> Claim:
    return Claim(lease_id, f"seqlake clean date={at.date()}", host, pid, at - HOUR, at, at + 3 * HOUR)


def held_by(claims: list[Claim], released: set[str], versions: dict[str, int], now: dt.datetime = NOON,
            alive=lambda c: True) -> Claim | None:
    """The holder as seen from the scheduler, a host that made none of the claims unless a test says so."""
    return holder(claims, released, versions, now, "scheduler", alive)


# --------------------------------------------------------------------------- who holds it, on hand-built logs


def test_the_live_claim_committed_first_holds_the_lease():
    a, b = claim("a"), claim("b")
    # Both committed before either looked: each reads the same log and finds the same holder.
    assert held_by([a, b], set(), {"a": 7, "b": 8}) == a
    assert held_by([b, a], set(), {"a": 9, "b": 8}) == b


def test_released_and_lapsed_claims_hold_nothing():
    a, b, c = claim("a"), claim("b"), claim("c")
    versions = {"a": 1, "b": 2, "c": 3}
    assert held_by([a, b, c], {"a"}, versions) == b
    assert held_by([a, b, c], set(), versions, now=NOON + 3 * HOUR) is None  # all three lapsed
    assert held_by([], set(), {}) is None


def test_on_the_host_that_claimed_the_process_decides_not_the_expiry():
    a, b = claim("a", host="scheduler"), claim("b")
    versions = {"a": 1, "b": 2}
    # a's process is gone: b holds, although a's lease has not lapsed.
    assert held_by([a, b], set(), versions, alive=lambda c: c.lease_id != "a") == b
    # a still runs past its lease (a long job whose renewals failed): it still holds.
    assert held_by([a], set(), versions, now=NOON + 4 * HOUR) == a


def test_a_claim_older_than_the_log_looked_at_is_older_than_every_other():
    a, b = claim("a"), claim("b")
    assert held_by([b, a], set(), {"b": 640}) == a


# --------------------------------------------------------------------------- on a real Delta table


def test_a_second_writer_is_refused_with_the_holder_named_and_both_outcomes_are_logged(tmp_path):
    lakehouse = str(tmp_path / "lakehouse")
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    elsewhere = dataclasses.replace(claim("elsewhere", at=now), host="another-host")
    append_event(lakehouse, elsewhere, "claim", elsewhere.at)

    with (
        pytest.raises(LakehouseBusy, match=r"being written by 'seqlake clean date=.*' \(pid 100 on another-host"),
        writer_lease(lakehouse, "seqlake sequences date=2026-11-02", HOUR),
    ):
        pytest.fail("ran without the lease")

    (refused,) = [e for e in lease_events(lakehouse) if e["lease_id"] != "elsewhere" and e["event"] == "release"]
    assert refused["command"] == "seqlake sequences date=2026-11-02"
    assert refused["outcome"].startswith("refused: held by 'seqlake clean date=")
    append_event(lakehouse, elsewhere, "release", now, "finished")
    with writer_lease(lakehouse, "seqlake sequences date=2026-11-02", HOUR) as mine:
        assert mine.pid == psutil.Process().pid
    assert [(e["lease_id"] == mine.lease_id, e["event"], e["outcome"]) for e in lease_events(lakehouse)][-2:] == [
        (True, "claim", None), (True, "release", "finished")]


def test_a_later_claim_does_not_take_the_lease_from_its_holder(tmp_path):
    lakehouse = str(tmp_path / "lakehouse")
    with writer_lease(lakehouse, "seqlake clean date=2026-11-02", HOUR) as mine:
        later = dataclasses.replace(claim("later", at=mine.at), host="another-host")
        append_event(lakehouse, later, "claim", later.at)
        with (
            pytest.raises(LakehouseBusy, match=f"lease {mine.lease_id}"),
            writer_lease(lakehouse, "seqlake examples date=2026-11-02", HOUR),
        ):
            pytest.fail("two holders")


def test_each_outcome_of_the_holder_is_its_release(tmp_path):
    lakehouse = str(tmp_path / "lakehouse")
    with pytest.raises(NothingToDo), writer_lease(lakehouse, "seqlake train night=2026-11-02", HOUR):
        raise NothingToDo("not this night's cadence")
    with pytest.raises(ValueError), writer_lease(lakehouse, "seqlake clean date=2026-11-02", HOUR):
        raise ValueError("negative dwell")
    assert [e["outcome"] for e in lease_events(lakehouse) if e["event"] == "release"] == [
        "skipped: not this night's cadence", "failed: ValueError: negative dwell"]


def test_a_job_killed_on_this_host_or_lapsed_elsewhere_blocks_nobody(tmp_path):
    lakehouse = str(tmp_path / "lakehouse")
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    started = dt.datetime.fromtimestamp(psutil.Process(job.pid).create_time(), dt.UTC).replace(tzinfo=None)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    killed = dataclasses.replace(this_process_claim("seqlake clean date=2026-11-02", HOUR, now),
                                 lease_id="killed", pid=job.pid, process_started_at=started)
    append_event(lakehouse, killed, "claim", killed.at)
    with (  # alive: it holds the lease
        pytest.raises(LakehouseBusy, match="lease killed"),
        writer_lease(lakehouse, "seqlake clean date=2026-11-02", HOUR),
    ):
        pass
    job.kill()
    job.wait()
    expired = dataclasses.replace(claim("expired", at=now - 4 * HOUR), host="another-host")
    append_event(lakehouse, expired, "claim", now)
    with writer_lease(lakehouse, "seqlake clean date=2026-11-02", HOUR):
        pass
    assert lease_events(lakehouse)[-1]["outcome"] == "finished"


def test_the_holder_renews_its_lease_while_it_runs(tmp_path):
    lakehouse = str(tmp_path / "lakehouse")
    lease = dt.timedelta(seconds=0.6)
    with writer_lease(lakehouse, "seqlake train night=2026-11-02", lease) as mine:
        time.sleep(1.5)
    events = [e for e in lease_events(lakehouse) if e["lease_id"] == mine.lease_id]
    renewals = [e for e in events if e["event"] == "renew"]
    assert [e["event"] for e in events] == ["claim", *["renew"] * len(renewals), "release"] and len(renewals) >= 3
    # Seen from another host, the lease never lapsed while the job ran.
    expiries = [e["expires_at"] for e in events if e["event"] != "release"]
    assert all(later["at"] < expiry for later, expiry in zip(events[1:], expiries, strict=False))
