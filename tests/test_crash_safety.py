"""A job killed (SIGKILL, the real signal) between two of its commits leaves
tables that no reader takes as published, and its rerun finds the commits of
the run that never finished, replaces them and records the versions it
committed itself. A second run of the same night started while the first
writes is refused, and both outcomes are logged."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from deltalake import DeltaTable

from pipelines.errors import BrokenPastError, LakehouseBusy
from pipelines.lakehouse.lease import lease_events
from pipelines.lakehouse.ledger import ledger_rows, unfinished_runs
from pipelines.lakehouse.publications import publications
from pipelines.lakehouse.tables import (
    GOLD_ITEM_STATS,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SILVER_EVENTS,
    SILVER_NOISE_METRICS,
    table_uri,
)
from pipelines.stages.clean import clean_dates
from pipelines.stages.ingest import ingest_date
from pipelines.stages.sequences import build_sequences
from tests.conftest import settings_in
from tests.test_continuity import NOV, _land

pytestmark = pytest.mark.slow
OVERRIDES = ("clean.lookback_days=1", "ingest.max_lateness_days=1")
COMMITS = {"clean": (SILVER_EVENTS, SILVER_NOISE_METRICS), "sequences": (GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS)}


@pytest.fixture(scope="module")
def before_night_two(spark, tmp_path_factory) -> dict[str, Path]:
    """Two landed days; night one done; night two ingested ("clean": its clean
    not run yet) and cleaned too ("sequences": its sequences not run yet)."""
    folder = tmp_path_factory.mktemp("crash")
    settings = settings_in(folder / "work", *OVERRIDES)
    for day in NOV[:2]:
        _land(settings, day)
    ingest_date(spark, settings, NOV[0])
    clean_dates(spark, settings, NOV[0])
    build_sequences(spark, settings, NOV[0])
    ingest_date(spark, settings, NOV[1])
    states = {"clean": folder / "before-clean"}
    shutil.copytree(folder / "work", states["clean"])
    clean_dates(spark, settings, NOV[1])
    states["sequences"] = folder / "before-sequences"
    shutil.copytree(folder / "work", states["sequences"])
    return states


def _version(lakehouse: Path, table) -> int:
    log = lakehouse / table.name / "_delta_log"
    return max(int(name.split(".")[0]) for name in os.listdir(log) if name.endswith(".json"))


def _killed_after_commit_to(settings, command: str, table, timeout: float = 600) -> None:
    """Run `seqlake COMMAND --date NOV[1]` and SIGKILL its process group the
    moment `table` gains a commit."""
    lakehouse = Path(settings.lakehouse)
    start = _version(lakehouse, table)
    job = subprocess.Popen(_night_two(settings, command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + timeout
    while _version(lakehouse, table) == start:
        assert job.poll() is None, f"{command} ended before it committed to {table.name}: {job.stderr.read().decode()[-2000:]}"
        assert time.monotonic() < deadline, f"{command} did not commit to {table.name} in {timeout} s"
        time.sleep(0.02)
    os.killpg(job.pid, signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL


@pytest.mark.parametrize(("command", "killed_after"), [
    ("clean", SILVER_EVENTS), ("sequences", GOLD_USER_SEQUENCES), ("sequences", GOLD_USER_STATS), ("sequences", GOLD_ITEM_STATS),
], ids=["clean:silver|noise", "sequences:sequences|user_stats", "sequences:user_stats|item_stats", "sequences:item_stats|ledger"])
def test_a_run_killed_between_two_commits_is_found_and_healed_by_its_rerun(spark, before_night_two, tmp_path, command, killed_after):
    shutil.copytree(before_night_two[command], tmp_path / "lakehouse-root")
    settings = settings_in(tmp_path / "lakehouse-root", *OVERRIDES)
    lakehouse, tables = Path(settings.lakehouse), COMMITS[command]
    before = {t.name: _version(lakehouse, t) for t in tables}
    published = publications(settings.lakehouse, tables[0])

    _killed_after_commit_to(settings, command, killed_after)

    after = {t.name: _version(lakehouse, t) for t in tables}
    done = tables[: tables.index(killed_after) + 1]
    assert {name for name in after if after[name] != before[name]} == {t.name for t in done}
    assert not [r for r in ledger_rows(settings.lakehouse, command).to_pylist() if NOV[1] in r["nights"]]
    # Nothing reads the killed run's commits as published, and the night cannot go on.
    assert publications(settings.lakehouse, tables[0]) == published
    if command == "clean":
        with pytest.raises(BrokenPastError, match="no finished clean run wrote 2026-11-02"):
            build_sequences(spark, settings, NOV[1])

    rerun = (clean_dates if command == "clean" else build_sequences)(spark, settings, NOV[1])
    killed = {line.split(" by run ")[1] for line in rerun["healed"]}
    assert len(killed) == 1 and sorted(rerun["healed"]) == sorted(f"{t.name} v{after[t.name]} by run {next(iter(killed))}" for t in done)
    (row,) = [r for r in ledger_rows(settings.lakehouse, command).to_pylist() if NOV[1] in r["nights"]]
    assert dict(row["table_versions"]) == {t.name: DeltaTable(table_uri(settings.lakehouse, t)).version() for t in tables}
    assert all(v > after[name] for name, v in dict(row["table_versions"]).items())
    # Healed: the next run of the stage finds nothing left to heal.
    assert unfinished_runs(settings.lakehouse, command, tables) == []
    # The rerun ran for the night: that is what a reader sees from now on.
    assert [p.day for p in publications(settings.lakehouse, tables[0]) if p.day == NOV[1]] == [NOV[1]]


def test_a_second_run_of_the_same_night_while_the_first_writes_is_refused_and_both_outcomes_are_logged(before_night_two, tmp_path):
    shutil.copytree(before_night_two["clean"], tmp_path / "lakehouse-root")
    settings = settings_in(tmp_path / "lakehouse-root", *OVERRIDES)
    first = subprocess.Popen(_night_two(settings, "clean"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while not [e for e in lease_events(settings.lakehouse) if e["event"] == "claim"]:
        assert first.poll() is None and time.monotonic() < deadline, first.stderr.read().decode()[-2000:]
        time.sleep(0.05)

    second = subprocess.run(_night_two(settings, "clean"), capture_output=True, text=True, timeout=300)
    assert first.wait(timeout=600) == 0, first.stderr.read().decode()[-2000:]

    assert second.returncode == LakehouseBusy.exit_status
    assert f"seqlake clean: the lakehouse is being written by 'seqlake clean date={NOV[1]}" in second.stderr
    claims = [e for e in lease_events(settings.lakehouse) if e["event"] == "claim"]
    outcomes = {e["lease_id"]: e["outcome"] for e in lease_events(settings.lakehouse) if e["event"] == "release"}
    assert [outcomes[c["lease_id"]].split(":")[0] for c in claims] == ["finished", "refused"]
    assert outcomes[claims[1]["lease_id"]].startswith(f"refused: held by 'seqlake clean date={NOV[1]}")
    # One finished clean of the night; silver was written by that run alone.
    (row,) = [r for r in ledger_rows(settings.lakehouse, "clean").to_pylist() if NOV[1] in r["nights"]]
    assert unfinished_runs(settings.lakehouse, "clean", COMMITS["clean"]) == []
    assert dict(row["table_versions"])[SILVER_EVENTS.name] == DeltaTable(table_uri(settings.lakehouse, SILVER_EVENTS)).version()


def _night_two(settings, command: str) -> list[str]:
    """`seqlake COMMAND --date NOV[1]` on the test's lakehouse, as its own process."""
    return [str(Path(sys.executable).parent / "seqlake"), command, "--date", str(NOV[1]), "--lakehouse", settings.lakehouse,
            "--set", f"landing={settings.landing}", "--set", "spark.master=local[1]", *(f"--set={o}" for o in OVERRIDES)]


def test_a_writer_ended_by_sigterm_releases_its_lease_with_the_failure(before_night_two, tmp_path):
    """Airflow ends a task past its timeout with SIGTERM: the job unwinds and
    logs why it let the lease go, so the next writer need not wait for it to lapse."""
    shutil.copytree(before_night_two["clean"], tmp_path / "lakehouse-root")
    settings = settings_in(tmp_path / "lakehouse-root", *OVERRIDES)
    job = subprocess.Popen(_night_two(settings, "clean"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not lease_events(settings.lakehouse):
        assert job.poll() is None and time.monotonic() < deadline, job.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    started = psutil.Process(job.pid).children(recursive=True)
    while not any(p.name() == "java" for p in started):  # its Spark JVM
        assert job.poll() is None and time.monotonic() < deadline, job.stderr.read().decode()[-2000:]
        time.sleep(0.05)
        started = psutil.Process(job.pid).children(recursive=True)
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=120) == 128 + signal.SIGTERM
    # What it started ends with it instead of lingering past the task.
    _, lingering = psutil.wait_procs(started, timeout=30)
    assert lingering == []
    assert [(e["event"], e["outcome"]) for e in lease_events(settings.lakehouse)] == [
        ("claim", None), ("release", f"failed: SystemExit: {128 + signal.SIGTERM}")]
