"""The seqlake command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SEQLAKE = str(Path(sys.executable).parent / "seqlake")


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([SEQLAKE, *args], capture_output=True, text=True, timeout=120, env=env)


def test_help_lists_the_commands():
    done = _run("--help")
    assert done.returncode == 0
    for command in ("generate", "ingest", "demo"):
        assert command in done.stdout


def test_generate_writes_landing_and_truth_under_out(tmp_path):
    done = _run("generate", "--out", str(tmp_path), "--users", "50", "--days", "2",
                "--start-date", "2026-01-05", "--seed", "3", "--noise-scale", "0.5")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("generate: events=")
    assert sorted(p.name for p in (tmp_path / "landing" / "events").iterdir()) == [
        "date=2026-01-05", "date=2026-01-06",
    ]
    assert (tmp_path / "truth" / "events" / "event_date=2026-01-05").is_dir()


def test_configuration_errors_exit_with_the_key_named(tmp_path):
    done = _run("generate", "--out", str(tmp_path), "--noise-scale", "-1")
    assert done.returncode != 0
    assert "generator.noise_scale: must be >= 0" in done.stderr


def test_unknown_command_is_refused():
    done = _run("frobnicate")
    assert done.returncode != 0
    assert "unknown command 'frobnicate'" in done.stderr
