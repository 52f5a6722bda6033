"""Whatever lands, ingest accounts for every file and every line: each kind of
bad input of the corpus (tests/bad_inputs.py) gets exactly its outcome, the
counts add up, and every standard reader reads both tables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pipelines.clickstream.landing import landing_folder
from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import delta_dataset
from pipelines.lakehouse.tables import BRONZE_EVENTS, BRONZE_EVENTS_REJECTED, table_uri
from pipelines.stages.ingest import ingest_date
from tests.bad_inputs import ANY_BINARY_REASON, DAY, corpus, land_corpus, line
from tests.conftest import settings_in


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    settings = settings_in(tmp_path_factory.mktemp("bad-inputs"))
    cases = corpus()
    folder = Path(landing_folder(settings.landing, DAY))
    land_corpus(folder, cases)
    return settings, cases, folder, ingest_date(spark, settings, DAY)


def _per_file(spark, settings, table, folder: Path) -> dict[str, Counter]:
    rows = spark.read.format("delta").load(table_uri(settings.lakehouse, table)).select("source_file", *(
        ["reason"] if table is BRONZE_EVENTS_REJECTED else [])).collect()
    got: dict[str, Counter] = {}
    for row in rows:
        name = Path(row["source_file"].removeprefix("file:")).relative_to(folder).as_posix()
        got.setdefault(name, Counter())[row["reason"] if table is BRONZE_EVENTS_REJECTED else "bronze"] += 1
    return got


def test_the_corpus_holds_at_least_25_kinds(ingested):
    _, cases, _, _ = ingested
    assert len({c.kind for c in cases}) == len(cases) >= 25


def test_every_kind_of_bad_input_gets_exactly_its_outcome(spark, ingested):
    settings, cases, folder, _ = ingested
    bronze = _per_file(spark, settings, BRONZE_EVENTS, folder)
    rejected = _per_file(spark, settings, BRONZE_EVENTS_REJECTED, folder)
    for case in cases:
        got_bronze, got_rejected = bronze.get(case.path, Counter())["bronze"], dict(rejected.get(case.path, Counter()))
        if case.rejected is None:
            assert got_bronze == 0 and got_rejected and set(got_rejected) <= ANY_BINARY_REASON, (case.kind, got_rejected)
        else:
            assert (got_bronze, got_rejected) == (case.bronze, case.rejected), case.kind


def test_every_file_is_read_quarantined_or_skipped_by_name_and_every_line_adds_up(ingested):
    _, cases, folder, figures = ingested
    read = [c for c in cases if not c.skipped and "unreadable_file" not in (c.rejected or {})]
    assert figures["files_read"] == len(read)
    assert sorted(Path(f.removeprefix("file:")).relative_to(folder).as_posix() for f in figures["files_unreadable"]) == sorted(
        c.path for c in cases if "unreadable_file" in (c.rejected or {}))
    assert sorted(Path(f.removeprefix("file:")).relative_to(folder).as_posix() for f in figures["files_skipped"]) == sorted(
        c.path for c in cases if c.skipped)
    assert figures["landed"] == figures["bronze"] + figures["rejected"]
    assert figures["bronze"] == sum(c.bronze for c in cases)
    assert figures["unknown_fields"] == {"browser": 1, "userId": 1}


def test_both_tables_stay_readable_by_every_standard_reader(spark, ingested):
    settings, _, _, figures = ingested
    for table, rows in ((BRONZE_EVENTS, figures["bronze"]), (BRONZE_EVENTS_REJECTED, figures["rejected"])):
        uri = table_uri(settings.lakehouse, table)
        assert spark.read.format("delta").load(uri).count() == rows
        arrow = delta_dataset(DeltaTable(uri)).to_table()  # delta-rs's log, pyarrow's reader
        assert arrow.num_rows == rows
        frame = arrow.to_pandas()
        if table is BRONZE_EVENTS_REJECTED:
            assert all(isinstance(raw, str) for raw in frame["raw"].dropna())


def test_a_landing_folder_of_empty_files_is_a_clear_error_that_writes_nothing(spark, tmp_path):
    settings = settings_in(tmp_path)
    folder = Path(landing_folder(settings.landing, DAY))
    folder.mkdir(parents=True)
    (folder / "part-0.jsonl").write_bytes(b"")
    (folder / "_SUCCESS").write_bytes(b"")
    with pytest.raises(MissingInputError, match="the landing folder of 2026-11-02 holds no records: 1 files read, all empty; 1 skipped"):
        ingest_date(spark, settings, DAY)
    assert not Path(table_uri(settings.lakehouse, BRONZE_EVENTS)).exists()


def test_a_file_the_job_may_not_read_is_quarantined_whole_and_the_others_are_ingested(spark, tmp_path):
    """Permissions, the real thing: a file of mode 000 beside a readable one,
    ingested by a job that may not read past a file's mode (as root, without
    the capabilities that let root read anything; as any other user, as is)."""
    settings = settings_in(tmp_path)
    folder = Path(landing_folder(settings.landing, DAY))
    folder.mkdir(parents=True)
    (folder / "part-0.jsonl").write_text(line("readable") + "\n")
    forbidden = folder / "part-1.jsonl"
    forbidden.write_text(line("forbidden") + "\n" + line("forbidden", 1) + "\n")
    forbidden.chmod(0)
    argv = [str(Path(sys.executable).parent / "seqlake"), "ingest", "--date", str(DAY), "--json", "--lakehouse", settings.lakehouse,
            "--set", f"landing={settings.landing}", "--set", "spark.master=local[1]"]
    if os.geteuid() == 0:
        argv = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert [Path(f.removeprefix("file:")) for f in figures["files_unreadable"]] == [forbidden]
    assert "Permission denied" in next(iter(figures["files_unreadable"].values()))
    assert (figures["files_read"], figures["landed"], figures["bronze"], figures["rejected"]) == (1, 2, 1, 1)
    rejected = DeltaTable(table_uri(settings.lakehouse, BRONZE_EVENTS_REJECTED)).to_pyarrow_table(columns=["reason", "source_file"])
    assert rejected.column("reason").to_pylist() == ["unreadable_file"]
