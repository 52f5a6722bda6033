"""The seqlake command line, run as a user would: help, exit codes, one closing line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

SEQLAKE = str(Path(sys.executable).parent / "seqlake")


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SEQLAKE, *args], capture_output=True, text=True, timeout=300, env=env)


def test_help_lists_the_commands():
    done = _run("--help")
    assert done.returncode == 0
    for command in ("generate", "ingest", "import", "clean", "sequences", "signatures", "examples", "evaluate", "demo"):
        assert command in done.stdout


@pytest.mark.parametrize("command", ["clean", "generate", "evaluate"])
def test_a_commands_help_names_it(command):
    done = _run(command, "--help")
    assert done.returncode == 0
    assert done.stdout.startswith(f"usage: seqlake {command} ")
    assert "--set KEY=VALUE" in done.stdout and "--json" in done.stdout


def test_generate_writes_landing_and_truth_under_out(tmp_path):
    done = _run("generate", "--out", str(tmp_path), "--users", "50", "--days", "2",
                "--start-date", "2026-01-05", "--seed", "3", "--noise-scale", "0.5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("generate: events=")
    assert sorted(p.name for p in (tmp_path / "landing" / "events").iterdir()) == [
        "date=2026-01-05", "date=2026-01-06",
    ]
    assert (tmp_path / "truth" / "events" / "event_date=2026-01-05").is_dir()
    as_json = _run("generate", "--out", str(tmp_path), "--users", "20", "--days", "1", "--json")
    assert json.loads(as_json.stdout.strip().splitlines()[-1])["job"] == "generate"


def test_a_configuration_error_exits_2_naming_the_key(tmp_path):
    done = _run("generate", "--out", str(tmp_path), "--noise-scale", "-1")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "seqlake generate: configuration error: generator.noise_scale: "
        "Input should be greater than or equal to 0, got '-1.0'"
    )


def test_a_usage_error_exits_2(tmp_path):
    assert _run("frobnicate").returncode == 2
    assert "invalid choice: 'frobnicate'" in _run("frobnicate").stderr
    done = _run("clean", "--start", "2026-11-03", "--lakehouse", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "seqlake clean: usage error: give --date D, or --start D1 and --end D2"


def test_a_job_failure_exits_1_with_a_one_line_reason(tmp_path):
    done = _run("ingest", "--date", "2026-11-02", "--landing", str(tmp_path / "nowhere"),
                "--lakehouse", str(tmp_path / "lake"), "--set", "spark.master=local[1]")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"seqlake ingest: no landing files for 2026-11-02 at {tmp_path / 'nowhere'}/events/date=2026-11-02"
    )


def test_jobs_run_as_modules_through_the_same_command_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "jobs.generate_clickstream", "--out", str(tmp_path), "--users", "10", "--days", "1"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("generate: events=")


_TERMINATED_IN_A_FINALIZER = """
import sys, time, weakref
from jobs.cli import exit_on_sigterm

class JavaObject:  # py4j frees a JVM object from a weakref callback, as here
    pass

def free_on_the_jvm(_ref):
    print("freeing", flush=True)
    time.sleep(1.0)  # the SIGTERM lands here

exit_on_sigterm()
held = JavaObject()
ref = weakref.ref(held, free_on_the_jvm)
try:
    del held
    for _ in range(100):
        time.sleep(0.05)
    print("went on as if never told to stop", flush=True)
finally:
    print("unwound", flush=True)
"""


def test_a_sigterm_that_lands_in_a_finalizer_still_ends_the_job_with_143():
    """The interpreter swallows an exception raised in a finalizer: without
    delivering it again, a job told to stop while py4j frees objects finishes."""
    job = subprocess.Popen([sys.executable, "-c", _TERMINATED_IN_A_FINALIZER], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert job.stdout.readline() == "freeing\n"
    job.send_signal(signal.SIGTERM)
    out, err = job.communicate(timeout=60)
    assert (job.returncode, out) == (128 + signal.SIGTERM, "unwound\n"), err


def test_python_dash_m_jobs_cli_exits_as_the_seqlake_command_does():
    """The DAG's tasks run `python -m jobs.cli`: a usage error raised in a job is still exit 2, not a crash."""
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "train", "--start", "2026-11-01", "--end", "2026-11-02"],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert (done.returncode, done.stderr.strip().splitlines()[-1]) == (
        2, "seqlake train: usage error: give --start D1 --end D2 --model M, or --night D")
