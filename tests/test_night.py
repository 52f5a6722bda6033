"""The night's plan: when it trains and on which days, and how skips flow."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.config import NightSettings
from pipelines.ctr.cadence import NoTraining, TrainingWindow, nightly_training_range
from pipelines.lakehouse.files import delta_rows
from pipelines.night import NIGHT


def _days(*days: int) -> list[dt.date]:
    return [dt.date(2026, 11, d) for d in days]


def test_a_night_trains_on_the_labelled_window_before_it_and_leaves_its_own_day_to_the_gate():
    rules = NightSettings(train_window_days=3)
    assert nightly_training_range(dt.date(2026, 11, 8), rules, _days(1, 2, 4, 5, 6, 7, 8)) == TrainingWindow(dt.date(2026, 11, 5), dt.date(2026, 11, 7))
    assert nightly_training_range(dt.date(2026, 11, 3), rules, _days(1, 2, 3)) == TrainingWindow(dt.date(2026, 11, 1), dt.date(2026, 11, 2))


def test_a_night_without_two_labelled_days_before_it_does_not_train():
    reason = nightly_training_range(dt.date(2026, 11, 2), NightSettings(), _days(1, 2))
    assert reason == NoTraining("needs two labelled days in the 7 before 2026-11-02, has 1")


def test_weekly_cadence_trains_on_its_weekday_only():
    rules = NightSettings(train_cadence="weekly", train_weekday=6)
    labelled = _days(*range(1, 16))
    assert nightly_training_range(dt.date(2026, 11, 15), rules, labelled) == TrainingWindow(dt.date(2026, 11, 8), dt.date(2026, 11, 14))  # a Sunday
    assert nightly_training_range(dt.date(2026, 11, 16), rules, labelled) == NoTraining("weekly training runs on weekday 6, 2026-11-16 is weekday 0")


def test_the_night_scores_the_day_that_begins_and_everything_else_the_day_that_ended():
    argv = {s.task_id: s.argv("2026-11-04", "2026-11-05") for s in NIGHT}
    assert argv["ingest_events"] == ["--date", "2026-11-04"]
    assert argv["train_model"] == ["--night", "2026-11-04"]
    assert argv["build_candidates"] == argv["score_candidates"] == ["--date", "2026-11-05"]
    assert [s.task_id for s in NIGHT if s.after_skip] == ["export_embeddings", "build_signatures", "write_report"]


def _copy_of_nights(generated_nights, tmp_path, **night):
    """Settings over a copy of the generated nights' lakehouse (other tests compare
    its tables), with an MLflow store and reports folder of the test's own."""
    import shutil

    settings = generated_nights.nightly
    shutil.copytree(settings.lakehouse, tmp_path / "lakehouse")
    return settings.model_copy(update={
        "lakehouse": str(tmp_path / "lakehouse"), "reports": str(tmp_path / "reports"),
        "registry": settings.registry.model_copy(update={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}),
        "train": settings.train.model_copy(update={"epochs": 1}),
        "night": settings.night.model_copy(update={"model": "din", **night}),
    })


def test_a_night_trains_gates_exports_scores_the_next_day_and_reports(spark, generated_nights, tmp_path, monkeypatch):
    """From training on: SDIM trained on the window, promoted, its embeddings
    exported, the night's buckets hashed under them, the next day's candidates
    scored from those buckets (equal to the full model on the raw sequences,
    histories past the long side included), rescoring idempotent, and the
    report drawn. Then what later reads see of what the nights published: see
    the end."""
    import json

    import numpy as np
    from deltalake import DeltaTable

    from jobs.cli import invoke
    from pipelines.ctr.artifacts import ModelFiles
    from pipelines.ctr.registry import champion_version, downloaded_model
    from pipelines.lakehouse.ledger import ledger_rows
    from pipelines.lakehouse.tables import (
        GOLD_CANDIDATES,
        GOLD_USER_BSE,
        GOLD_USER_SEQUENCES,
        OPS_QUALITY,
        SCORES_CTR,
        table_uri,
    )
    from pipelines.scoring.batch_scoring import ModelReplica
    from pipelines.stages.evaluate import bse_parity_of_day
    from pipelines.stages.score import score_day

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = _copy_of_nights(generated_nights, tmp_path, model="sdim")
    night = generated_nights.days[-1]
    states = invoke("run", ["--date", str(night), "--from", "train_model"], settings)["states"][str(night)]
    assert set(states.values()) == {"success"} and list(states)[0] == "train_model"
    assert champion_version(settings) == "1"  # the first model beats no champion

    def rows(table, **partition):
        (column, value), = partition.items()
        return delta_rows(DeltaTable(table_uri(settings.lakehouse, table)), partitions=[(column, "=", str(value))])

    scored_day = night + dt.timedelta(days=1)
    candidates = rows(GOLD_CANDIDATES, score_date=scored_day)
    # The night's buckets are hashed under the embeddings of the champion it settled on (next to
    # the bootstrap ones of the first run), and the scores read them.
    assert set(rows(GOLD_USER_BSE, as_of_date=night).column("version").to_pylist()) == {"bootstrap-v1", "seqlake-ctr-v1"}
    scored = [json.loads(r["figures"]) for r in ledger_rows(settings.lakehouse, "score").to_pylist()]
    assert [(f["long_side"], f["scores"]) for f in scored] == [("bse", candidates.num_rows)]

    lengths = (settings.examples.train_len, settings.examples.short_len)
    folder = ModelFiles.read(downloaded_model(settings, "1"))
    from_buckets = ModelReplica(folder, "1", *lengths, embedding_version="seqlake-ctr-v1")(candidates)
    from_sequences = ModelReplica(folder, "1", *lengths, embedding_version=None)(candidates).column("score").to_numpy()
    assert candidates.column("long_bse").null_count == 0
    assert np.abs(from_buckets.column("score").to_numpy() - from_sequences).max() < 1e-5
    # ... on histories that run past the long side, too (heavy users).
    candidate_users = set(candidates.column("user_id").to_pylist())
    long_histories = [r for r in rows(GOLD_USER_SEQUENCES, as_of_date=night).to_pylist()
                      if r["user_id"] in candidate_users and r["length"] > settings.examples.train_len]
    assert len(long_histories) >= 3
    # The same check as a user runs it (`seqlake evaluate bse`), against the histories as published.
    parity = bse_parity_of_day(settings, scored_day, "1")
    assert parity["candidates"] == candidates.num_rows and parity["users_past_long_side"] >= 3
    assert parity["max_abs_diff"] < 1e-5 and parity["max_abs_diff_past_long_side"] < 1e-5

    def published():
        table = rows(SCORES_CTR, score_date=scored_day)
        return sorted(zip(*(table.column(c).to_pylist() for c in ("user_id", "item_id", "score", "model_version")), strict=True))

    expected = sorted(zip(*(from_buckets.column(c).to_pylist() for c in ("user_id", "item_id", "score", "model_version")), strict=True))
    first = published()
    assert [(u, i, v) for u, i, _, v in first] == [(u, i, v) for u, i, _, v in expected]
    assert max(abs(a[2] - b[2]) for a, b in zip(first, expected, strict=True)) < 1e-6
    assert score_day(settings, scored_day, "1")["scores"] == candidates.num_rows and published() == first
    # A scoring actor killed (SIGKILL, from outside) while the run is under way:
    # Ray Data restarts it and retries its batches, and every candidate is
    # still scored exactly once, with the same score.
    killed = _kill_first_process_named("ModelReplica")
    assert score_day(settings, scored_day, "1")["scores"] == candidates.num_rows
    assert killed() and published() == first

    checked = delta_rows(DeltaTable(table_uri(settings.lakehouse, OPS_QUALITY)), partitions=[("date", "=", str(scored_day))])
    assert checked.column("table").to_pylist() == ["scores/ctr"] * 3 and checked.column("success").to_pylist() == [True] * 3
    report = (tmp_path / "reports" / f"report-{night}.html").read_text()
    assert report.count("data:image/png;base64,") >= 9 and "not available" not in report.split('id="roc"')[1][:2000]
    _later_reads_see_what_the_nights_published(spark, settings, night, folder)


def _later_reads_see_what_the_nights_published(spark, settings, night, model_folder):
    """After the night promoted v1 and hashed its dates under v1's embeddings:
    - examples rebuilt now carry the sums each as-of date's night published
      (the bootstrap ones), not those of a champion trained on their own labels;
    - candidates asking for sums under v1 as of a date no night published them
      for get none (null, counted), never zeros;
    - the candidates of a day are the same rows before and after that day's own
      events exist, and their features equal those of a training example of the
      same user, item and time (the slot position unknown);
    - sums or a model from another projection are refused."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from delta.tables import DeltaTable as SparkDeltaTable
    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from pipelines.bse.projection import ProjectionMismatchError, persisted_projection
    from pipelines.ctr.artifacts import load_model
    from pipelines.ctr.batches import shape_for, to_batch
    from pipelines.lakehouse.tables import (
        GOLD_CANDIDATES,
        GOLD_TRAINING_EXAMPLES,
        SILVER_EVENTS,
        table_uri,
    )
    from pipelines.scoring.batch_scoring import bse_twin
    from pipelines.scoring.candidates import CANDIDATE_SOURCES
    from pipelines.stages.candidates import build_candidates
    from pipelines.stages.examples import build_examples
    from pipelines.stages.score import score_day

    before = night - dt.timedelta(days=1)

    def rows(table, column, day):
        return delta_rows(DeltaTable(table_uri(settings.lakehouse, table)), partitions=[(column, "=", str(day))])

    with_sums = settings.model_copy(update={"examples": settings.examples.model_copy(update={"bse_long_side": True})})
    build_examples(spark, with_sums, night)
    examples = {day: rows(GOLD_TRAINING_EXAMPLES, "event_date", day) for day in (before, night)}
    assert {(r["event_date"], r["bse_version"], r["bse_trained_through"]) for day in examples for r in
            examples[day].select(["event_date", "bse_version", "bse_trained_through"]).to_pylist()} == {
        (before, "bootstrap-v1", None), (night, "bootstrap-v1", None)}
    assert examples[night].column("long_bse").null_count == 0

    unpublished = build_candidates(spark, settings, night, version="seqlake-ctr-v1")
    assert unpublished["without_bse"] == unpublished["candidates"] > 0 and unpublished["with_bse"] == 0

    # An example of the night whose item is among the user's recent ones (a candidate for sure).
    def recent(ids):
        return list(dict.fromkeys(reversed(ids)))[: settings.scoring.recent_items]

    shown = next(r for r in examples[night].to_pylist() if r["item_id"] in recent(r["long_item_ids"]))
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=shown["impression_ts"])
    at_its_time = settings.model_copy(update={"scoring": settings.scoring.model_copy(update={"score_time": moment.time()})})
    build_candidates(spark, at_its_time, night)
    first = rows(GOLD_CANDIDATES, "score_date", night)
    assert set(first.column("candidate_source").to_pylist()) == set(CANDIDATE_SOURCES)
    SparkDeltaTable.forPath(spark, table_uri(settings.lakehouse, SILVER_EVENTS)).delete(F.col("event_date") == F.lit(night))
    build_candidates(spark, at_its_time, night)
    again = rows(GOLD_CANDIDATES, "score_date", night)
    assert again.sort_by([("user_id", "ascending"), ("item_id", "ascending")]).to_pylist() == \
        first.sort_by([("user_id", "ascending"), ("item_id", "ascending")]).to_pylist()

    model, vocab, _ = load_model(model_folder)
    lengths = (settings.examples.train_len, settings.examples.short_len)
    pair = (pc.field("user_id") == shown["user_id"]) & (pc.field("item_id") == shown["item_id"])
    candidate = first.filter(pair)
    candidate = candidate.append_column("label", pa.nulls(1, pa.int64()))  # to be scored: no label yet
    example = examples[night].filter(pair & (pc.field("impression_ts") == shown["impression_ts"])).slice(0, 1)
    as_example = to_batch(example, vocab, shape_for(model.config, *lengths))
    as_candidate = to_batch(candidate, vocab, shape_for(model.config, *lengths))
    for name, tensor in as_example.items():
        if name not in ("position", "label"):
            assert tensor.tolist() == as_candidate[name].tolist(), name
    assert as_candidate["position"].tolist() == [0]  # unknown: the slot training drops positions to
    summarized = to_batch(candidate, vocab, shape_for(bse_twin(model).config, *lengths))
    for name in ("dense", "short_items", "short_categories", "short_gaps", "short_mask"):
        assert summarized[name].tolist() == as_example[name].tolist(), name

    other = settings.model_copy(update={"bse": settings.bse.model_copy(update={"projection_version": "simhash-v2", "projection_seed": 1})})
    persisted_projection(other.lakehouse, other.bse)
    with pytest.raises(ProjectionMismatchError, match="gold/user_bse was built with projection hash"):
        build_candidates(spark, other, night + dt.timedelta(days=1))  # the sums as of the night, under v1
    with pytest.raises(ProjectionMismatchError, match="the model was built with projection hash"):
        score_day(other, night + dt.timedelta(days=1), "1")

    # Every table the nights wrote is what the catalog declares: columns, types and partitioning.
    import os

    import pyarrow as pa

    from pipelines.lakehouse.tables import TABLES, spark_type_name

    written = {name: DeltaTable(table_uri(settings.lakehouse, spec)) for name, spec in TABLES.items()
               if os.path.isdir(table_uri(settings.lakehouse, spec))}
    assert {"bronze/events", "silver/events", "gold/user_sequences", "gold/user_bse", "gold/training_examples",
            "gold/candidates", "scores/ctr", "ops/runs", "ops/quality"} <= set(written)
    for name, table in written.items():
        schema = pa.schema(table.schema().to_arrow())
        assert {f.name: spark_type_name(f.type) for f in schema} == TABLES[name].columns, name
        assert table.metadata().partition_columns == [TABLES[name].partition_column], name


def test_half_the_dwell_values_negative_in_bronze_stop_the_night_at_the_silver_gate(spark, generated_nights, tmp_path):
    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from jobs.cli import invoke
    from pipelines.lakehouse.tables import BRONZE_EVENTS, OPS_QUALITY, SILVER_EVENTS, table_uri
    from pipelines.lakehouse.writes import read_date_partitions, replace_date_partitions
    from pipelines.night import NightFailed

    settings = _copy_of_nights(generated_nights, tmp_path)
    night = generated_nights.days[-1]
    # An upstream writer gone wrong: bronze of the night with every other dwell negated.
    bronze = read_date_partitions(spark, settings.lakehouse, BRONZE_EVENTS, night).localCheckpoint()
    corrupted = bronze.withColumn("dwell_ms", F.when(F.hash("event_id") % 2 == 0, -F.col("dwell_ms")).otherwise(F.col("dwell_ms")))
    replace_date_partitions(corrupted, settings.lakehouse, BRONZE_EVENTS, night)
    published = {t: DeltaTable(table_uri(settings.lakehouse, t)).version() for t in (SILVER_EVENTS,)}

    with pytest.raises(NightFailed, match="clean_events failed") as failure:
        invoke("run", ["--date", str(night), "--from", "clean_events"], settings)
    assert failure.value.states["clean_events"] == "failed"
    assert {s for t, s in failure.value.states.items() if t != "clean_events"} == {"upstream_failed"}
    assert "dwell_ms >= 0" in str(failure.value) and "nothing was published to silver/events" in str(failure.value)
    assert {t: DeltaTable(table_uri(settings.lakehouse, t)).version() for t in published} == published
    results = delta_rows(DeltaTable(table_uri(settings.lakehouse, OPS_QUALITY)), partitions=[("date", "=", str(night))])
    silver = sorted((r for r in results.to_pylist() if r["table"] == "silver/events"), key=lambda r: r["validated_at"])
    assert silver[-1]["success"] is False and "dwell_ms >= 0" in silver[-1]["failed_expectations"]


def _kill_first_process_named(name: str):
    """SIGKILL the first process whose command line names `name`, from a
    thread that looks for it; the returned call waits for that thread and
    returns the pid it killed (None if none came)."""
    import threading
    import time

    import psutil

    killed: list[int] = []

    def hunt() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            for process in psutil.process_iter(["pid", "cmdline"]):
                if name in " ".join(process.info["cmdline"] or []):
                    process.kill()
                    killed.append(process.info["pid"])
                    return
            time.sleep(0.02)

    thread = threading.Thread(target=hunt, daemon=True)
    thread.start()

    def result() -> int | None:
        thread.join(timeout=300)
        return killed[0] if killed else None

    return result
