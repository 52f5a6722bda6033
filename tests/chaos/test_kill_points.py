"""kill -9 at every commit point of every stage (pipelines.lakehouse.faults).

Three generated days; the first two nights' Spark stages run whole. Then, for
each stage of the third night in turn (the six Spark stages, the night's
training with its registration, scoring with the model it trained): the stage
runs once uninterrupted as its own process (the reference, which also traces
the stage's commit points), and once more from the same starting lakehouse
and registry for each point, killed there with SIGKILL, its whole process
group with it (Spark's JVM, Ray's processes). After each kill every table is
readable, no reader sees the killed run's batch as published (nor the gate
its model), and a rerun of the stage converges to the reference: the same
rows in every table (content hashes) and the same models in the registry,
whatever commits the killed run left. Only ops/quality differs, by design: it
logs every validation attempt, the killed run's included.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobs.cli import invoke
from pipelines.errors import NothingToDo
from pipelines.lakehouse.faults import KILL_AT, TRACE
from pipelines.lakehouse.fingerprint import lakehouse_fingerprints
from pipelines.lakehouse.ledger import ledger_rows
from pipelines.lakehouse.publications import publications
from pipelines.lakehouse.tables import OPS_QUALITY, TABLES
from tests.conftest import settings_in

pytestmark = pytest.mark.chaos
SPARK_STAGES = ("ingest", "clean", "sequences", "signatures", "examples", "candidates")
# The night trains on the two days before the third; score uses the model it trained.
STAGES = (*SPARK_STAGES, "train", "score")
COMMON = ("generator.users=120", "generator.days=3", "generator.workers=1", "ingest.max_lateness_days=1",
          "clean.lookback_days=1", "sequences.retention_days=2", "sequences.max_len=40", "examples.train_len=32",
          # One training worker reading in order: the same inputs train the same weights.
          "train.workers=1", "train.cpus_per_worker=1", "train.epochs=2", "train.progress_every=0")
# A log of every validation attempt: a killed run's own attempts stay in it.
ATTEMPT_LOGS = {OPS_QUALITY.name}


@dataclasses.dataclass(frozen=True)
class Reference:
    # The world before the stage ran on the third night: its lakehouse and,
    # beside it, the registry's database (the models' files stay where the
    # reference world logged them: every run writes its own).
    before: Path
    points: list[str]  # the stage's commit points, in the order it reached them
    fingerprints: dict[str, object]  # every table and the registry after it ran


@pytest.fixture(scope="module")
def night_three(spark, tmp_path_factory) -> tuple[object, object, dict[str, Reference]]:
    from pipelines.lakehouse.files import landing_dates
    from pipelines.synth.generate import generate

    folder = tmp_path_factory.mktemp("chaos")
    settings = settings_in(folder / "world", *COMMON)
    generate(settings.generator, settings.landing, settings.truth)
    days = landing_dates(settings.landing)
    for day in days[:2]:
        for stage in SPARK_STAGES:
            invoke(stage, ["--date", str(day)], settings)
    references = {}
    for stage in STAGES:
        before = folder / f"before-{stage}"
        _copy_world(settings, before)
        trace = folder / f"{stage}.points"
        done = _stage_process(settings, stage, days[2], {TRACE: str(trace)})
        assert done.wait(timeout=600) == 0, done.stderr.read().decode()[-3000:]
        references[stage] = Reference(before, trace.read_text().splitlines(), _fingerprints(settings))
        if stage == "train":
            invoke("models", ["promote", _night_model(settings, days[2])], settings)
    return settings, days[2], references


def _copy_world(settings, to: Path) -> None:
    """`settings`' lakehouse and registry database into `to`, as settings_in(to) finds them."""
    shutil.copytree(settings.lakehouse, to / "lakehouse")
    registry = Path(settings.lakehouse).parent / "mlflow.db"
    if registry.exists():
        shutil.copy(registry, to / "mlflow.db")


def _stage_process(settings, stage: str, day, env: dict[str, str]) -> subprocess.Popen:
    """`seqlake STAGE --date DAY` (train: `--night DAY`) on `settings`' lakehouse, as a process group of its own."""
    argv = [str(Path(sys.executable).parent / "seqlake"), stage, "--night" if stage == "train" else "--date", str(day),
            "--lakehouse", settings.lakehouse, "--set", f"landing={settings.landing}", "--set", "spark.master=local[1]",
            *(f"--set={o}" for o in COMMON)]
    return subprocess.Popen(argv, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def _fingerprints(settings) -> dict[str, object]:
    tables = {name: f for name, f in lakehouse_fingerprints(settings.lakehouse, settings.landing).items() if name not in ATTEMPT_LOGS}
    return {**tables, "registry": _registry(settings)}


def _registry(settings) -> list[dict[str, object]]:
    """The registry's models as content: each version's tags, aliases and
    weights (its number, run and lakehouse aside: a rerun registers anew)."""
    from pipelines.ctr.registry import LAKEHOUSE_TAG, RUN_TAG, downloaded_model, model_versions

    models = []
    for version in model_versions(settings):
        weights = Path(downloaded_model(settings, version.version)) / "model.safetensors"
        models.append({"tags": {k: v for k, v in version.tags.items() if k not in (RUN_TAG, LAKEHOUSE_TAG)},
                       "aliases": list(version.aliases), "weights": hashlib.sha256(weights.read_bytes()).hexdigest()})
    return sorted(models, key=lambda m: json.dumps(m, sort_keys=True))


def _night_model(settings, night) -> str | None:
    """The version the gate would take as the night's model; None before one is published."""
    from pipelines.stages.gate import trained_for_night

    try:
        return trained_for_night(settings, night)
    except NothingToDo:
        return None


def _published(settings, night) -> dict[str, object]:
    return {**{name: publications(settings.lakehouse, spec) for name, spec in TABLES.items()},
            "night's model": _night_model(settings, night)}


def _group_gone(pgid: int, seconds: float = 30) -> bool:
    """Whether every process of the killed job's group is gone (its JVM, Ray's processes)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.5)
    return False


def test_every_stage_passes_through_before_and_after_each_of_its_commits(night_three):
    _, _, references = night_three
    for stage, reference in references.items():
        points = reference.points
        assert points and len(points) % 2 == 0, stage
        for before, after in zip(points[::2], points[1::2], strict=True):
            assert before.startswith("before ") and after == "after " + before.removeprefix("before "), (stage, points)
        # Every stage ends with its ledger row: the commit that publishes what it wrote (train's, its model).
        assert points[-1].startswith("after append ops/runs#"), (stage, points)


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_killed_at_any_commit_point_leaves_readable_unpublished_tables_and_its_rerun_converges(
        spark, night_three, tmp_path, stage):
    settings, day, references = night_three
    reference = references[stage]
    published_before = _published(settings_in(reference.before), day)
    for n, point in enumerate(reference.points):
        shutil.copytree(reference.before, tmp_path / f"kill-{n}")
        work = settings_in(tmp_path / f"kill-{n}", *COMMON, f"landing={settings.landing}")
        killed = _stage_process(work, stage, day, {KILL_AT: point})
        assert killed.wait(timeout=600) == -signal.SIGKILL, (point, killed.stderr.read().decode()[-3000:])
        assert _group_gone(killed.pid), point
        finished = any(day in row["nights"] for row in ledger_rows(work.lakehouse, stage).to_pylist())
        # Readable: every table's current version reads whole with delta-rs.
        lakehouse_fingerprints(work.lakehouse, work.landing)
        # Until its ledger row lands, nothing of the killed run is published.
        assert finished == (point == reference.points[-1]), point
        if not finished:
            assert _published(work, day) == published_before, point
        invoke(stage, ["--night" if stage == "train" else "--date", str(day)], work)
        assert _fingerprints(work) == reference.fingerprints, point
        shutil.rmtree(tmp_path / f"kill-{n}")
