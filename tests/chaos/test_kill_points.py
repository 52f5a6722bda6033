"""kill -9 at every commit point of every Spark stage (pipelines.lakehouse.faults).

Three generated days; the first two nights run whole. Then, for each stage of
the third night in turn: the stage runs once uninterrupted as its own process
(the reference, which also traces the stage's commit points), and once more
from the same starting lakehouse for each point, killed there with SIGKILL.
After each kill every table is readable, no reader sees the killed run's
batch as published, and a rerun of the stage converges to the reference:
the same rows in every table (content hashes), whatever commits the killed run
left. Only ops/quality differs, by design: it logs every validation attempt,
the killed run's included.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import invoke
from pipelines.lakehouse.faults import KILL_AT, TRACE
from pipelines.lakehouse.fingerprint import lakehouse_fingerprints
from pipelines.lakehouse.ledger import ledger_rows
from pipelines.lakehouse.publications import publications
from pipelines.lakehouse.tables import OPS_QUALITY, TABLES
from tests.conftest import settings_in

pytestmark = pytest.mark.chaos
STAGES = ("ingest", "clean", "sequences", "signatures", "examples", "candidates")
COMMON = ("generator.users=120", "generator.days=3", "generator.workers=1", "ingest.max_lateness_days=1",
          "clean.lookback_days=1", "sequences.retention_days=2", "sequences.max_len=40", "examples.train_len=32")
# A log of every validation attempt: a killed run's own attempts stay in it.
ATTEMPT_LOGS = {OPS_QUALITY.name}


@dataclasses.dataclass(frozen=True)
class Reference:
    before: Path  # the lakehouse before the stage ran on the third night
    points: list[str]  # the stage's commit points, in the order it reached them
    fingerprints: dict[str, dict[str, object]]  # every table after it ran


@pytest.fixture(scope="module")
def night_three(spark, tmp_path_factory) -> tuple[object, object, dict[str, Reference]]:
    from pipelines.lakehouse.files import landing_dates
    from pipelines.synth.generate import generate

    folder = tmp_path_factory.mktemp("chaos")
    settings = settings_in(folder / "world", *COMMON)
    generate(settings.generator, settings.landing, settings.truth)
    days = landing_dates(settings.landing)
    for day in days[:2]:
        for stage in STAGES:
            invoke(stage, ["--date", str(day)], settings)
    references = {}
    for stage in STAGES:
        before = folder / f"before-{stage}"
        shutil.copytree(settings.lakehouse, before)
        trace = folder / f"{stage}.points"
        done = _stage_process(settings, stage, days[2], {TRACE: str(trace)})
        assert done.wait(timeout=600) == 0, done.stderr.read().decode()[-3000:]
        references[stage] = Reference(before, trace.read_text().splitlines(), _fingerprints(settings))
    return settings, days[2], references


def _stage_process(settings, stage: str, day, env: dict[str, str]) -> subprocess.Popen:
    """`seqlake STAGE --date DAY` on `settings`' lakehouse, as a process group of its own."""
    argv = [str(Path(sys.executable).parent / "seqlake"), stage, "--date", str(day), "--lakehouse", settings.lakehouse,
            "--set", f"landing={settings.landing}", "--set", "spark.master=local[1]", *(f"--set={o}" for o in COMMON)]
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _fingerprints(settings) -> dict[str, dict[str, object]]:
    return {name: f for name, f in lakehouse_fingerprints(settings.lakehouse, settings.landing).items() if name not in ATTEMPT_LOGS}


def _published(lakehouse: str) -> dict[str, list]:
    return {name: publications(lakehouse, spec) for name, spec in TABLES.items()}


def test_every_stage_passes_through_before_and_after_each_of_its_commits(night_three):
    _, _, references = night_three
    for stage, reference in references.items():
        points = reference.points
        assert points and len(points) % 2 == 0, stage
        for before, after in zip(points[::2], points[1::2], strict=True):
            assert before.startswith("before ") and after == "after " + before.removeprefix("before "), (stage, points)
        # Every stage ends with its ledger row: the commit that publishes what it wrote.
        assert points[-1].startswith("after append ops/runs#"), (stage, points)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_killed_at_any_commit_point_leaves_readable_unpublished_tables_and_its_rerun_converges(
        spark, night_three, tmp_path, stage):
    settings, day, references = night_three
    reference = references[stage]
    published_before = _published(str(reference.before))
    for n, point in enumerate(reference.points):
        work = settings_in(tmp_path / f"kill-{n}", *COMMON, f"landing={settings.landing}")
        shutil.copytree(reference.before, work.lakehouse)
        killed = _stage_process(work, stage, day, {KILL_AT: point})
        assert killed.wait(timeout=600) == -signal.SIGKILL, (point, killed.stderr.read().decode()[-3000:])
        finished = any(day in row["nights"] for row in ledger_rows(work.lakehouse, stage).to_pylist())
        # Readable: every table's current version reads whole with delta-rs.
        lakehouse_fingerprints(work.lakehouse, work.landing)
        # Until its ledger row lands, nothing of the killed run is published.
        assert finished == (point == reference.points[-1]), point
        if not finished:
            assert _published(work.lakehouse) == published_before, point
        invoke(stage, ["--date", str(day)], work)
        assert _fingerprints(work) == reference.fingerprints, point
        shutil.rmtree(tmp_path / f"kill-{n}")
