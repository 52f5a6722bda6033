"""Security basics: no secret in what a job prints or logs, no name from the
outside that reaches outside the lakehouse, nothing unpickled."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
import torch

from jobs.cli import failure_reason, summary_line
from pipelines.errors import MissingInputError
from pipelines.lakehouse.lease import lease_events, writer_lease
from pipelines.lakehouse.tables import TableSpec
from pipelines.masking import masked

SEQLAKE = str(Path(sys.executable).parent / "seqlake")


@pytest.mark.parametrize(("text", "shown"), [
    ("tracking_uri=postgresql://mlflow:hunter2@db:5432/mlflow", "tracking_uri=postgresql://mlflow:***@db:5432/mlflow"),
    ('{"aws_secret_access_key": "wJalr/K7MDENG", "rows": 3}', '{"aws_secret_access_key": "***", "rows": 3}'),
    ("--set spark.conf.spark.hadoop.fs.s3a.secret.key=abc123 --date 2026-11-02",
     "--set spark.conf.spark.hadoop.fs.s3a.secret.key=*** --date 2026-11-02"),
    ("https://host/api?token=xyz&page=2", "https://host/api?token=***&page=2"),
    ("PASSWORD: s3cr3t", "PASSWORD: ***"),
    # What names no secret is left alone.
    ("lakehouse=s3a://bucket/lakehouse tokens_seen=3 rows=5", "lakehouse=s3a://bucket/lakehouse tokens_seen=3 rows=5"),
    ("s3a://bucket@region/path", "s3a://bucket@region/path"),
])
def test_secrets_are_masked_and_nothing_else(text, shown):
    assert masked(text) == shown


def test_a_jobs_summary_and_failure_lines_never_show_a_password():
    figures = {"rows": 5, "tracking_uri": "mysql://svc:pa55word@db/mlflow"}
    assert summary_line("train", figures, as_json=False) == "train: rows=5 tracking_uri=mysql://svc:***@db/mlflow"
    assert summary_line("train", figures, as_json=True) == '{"job": "train", "rows": 5, "tracking_uri": "mysql://svc:***@db/mlflow"}'
    failure = MissingInputError("no landing files at s3a://AKIAXX:topsecret@bucket/landing")
    assert failure_reason(failure) == "no landing files at s3a://AKIAXX:***@bucket/landing"
    assert failure_reason(RuntimeError("client_secret=abc")) == "failed: RuntimeError: client_secret=***"


def test_the_lease_log_keeps_no_secret_of_a_failed_job(tmp_path):
    lakehouse = str(tmp_path / "lakehouse")
    with pytest.raises(RuntimeError), writer_lease(lakehouse, "seqlake import input=https://u:pw1@host/x", dt.timedelta(minutes=1)):
        raise RuntimeError("could not read https://u:pw1@host/x")
    events = lease_events(lakehouse)
    assert [(e["event"], e["outcome"]) for e in events] == [
        ("claim", None), ("release", "failed: RuntimeError: could not read https://u:***@host/x")]
    assert "pw1" not in str(events)


def test_a_failed_job_says_why_without_the_secret_in_its_input(tmp_path):
    # A presigned location carries its token in the path: the failure names the location, not the token.
    landing = tmp_path / "landing?X-Amz-Security-Token=hunter2"
    done = subprocess.run([SEQLAKE, "ingest", "--date", "2026-11-02", "--lakehouse", str(tmp_path / "lakehouse"),
                           "--landing", str(landing), "--set", "spark.master=local[1]"], capture_output=True, text=True, timeout=300)
    assert done.returncode == MissingInputError.exit_status, done.stderr[-2000:]
    assert f"seqlake ingest: no landing files for 2026-11-02 at {tmp_path}/landing?X-Amz-Security-Token=***" in done.stderr
    assert "hunter2" not in done.stdout + done.stderr


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "bronze/../../x", "gold", "Gold/Events", "bronze/events/"])
def test_a_table_name_cannot_reach_outside_the_lakehouse(name):
    with pytest.raises(ValueError, match="must be layer/name"):
        TableSpec(name, pa.schema([]), "day")


@pytest.mark.parametrize(("argv", "said"), [
    (["models", "promote", "../../tmp/x"], "a version number"),
    (["models", "export", "--version", "1/../../2"], "a version number"),
    (["evaluate", "model", "--version", "/etc", "--date", "2026-11-02"], "a version number"),
    (["import", "--format", "taobao", "--input", "x.csv", "--source", "taobao' OR '1'='1"], "lowercase letters"),
    (["import", "--format", "taobao", "--input", "x.csv", "--source", "landing"], "the nightly landing's"),
])
def test_names_from_the_command_line_that_would_become_paths_or_sql_are_refused_as_usage_errors(argv, said, tmp_path):
    done = subprocess.run([SEQLAKE, *argv, "--lakehouse", str(tmp_path / "lakehouse")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and said in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "lakehouse").exists()


class _Payload:
    """What a hostile checkpoint would carry: unpickling it runs code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoints_and_models_are_never_unpickled(tmp_path):
    from ray.train import Checkpoint

    from pipelines.ctr.artifacts import load_model
    from pipelines.ctr.distributed import _STATE, load_checkpoint_state

    marker = tmp_path / "ran"
    folder = tmp_path / "checkpoint"
    folder.mkdir()
    torch.save({"model": {}, "progress": _Payload(marker)}, folder / _STATE)
    with pytest.raises(Exception, match="Weights only load failed"):
        load_checkpoint_state(Checkpoint.from_directory(str(folder)))
    # A model folder whose weights file is a pickle is refused, not run.
    model = tmp_path / "model"
    model.mkdir()
    torch.save(_Payload(marker), model / "model.safetensors")
    (model / "config.json").write_text('{"model": {}, "metadata": {}}')
    with pytest.raises(Exception):  # noqa: B017 - whatever safetensors says, it ran nothing
        load_model(model)
    assert not marker.exists()
