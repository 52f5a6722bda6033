"""Offline scoring: an SDIM scored from the candidates' BSE bucket sums (built
by Spark under its exported embeddings) equals the same model on the raw
sequences, and rescoring a date replaces that date's scores."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow.compute as pc
import torch
from deltalake import DeltaTable

from jobs.build_candidates import build_candidates
from jobs.build_signatures import build_signatures
from jobs.models import export_embeddings
from jobs.score import score_day
from pipelines.bse.projection import stored_projection
from pipelines.config import ExampleSettings
from pipelines.ctr.artifacts import save_model
from pipelines.ctr.base import ModelConfig
from pipelines.ctr.batches import DENSE_FEATURES
from pipelines.ctr.datasets import vocabulary
from pipelines.ctr.registry import log_and_register
from pipelines.ctr.zoo import build_model
from pipelines.lakehouse.tables import GOLD_CANDIDATES, SCORES_CTR, table_uri
from pipelines.scoring.batch_scoring import ModelReplica
from pipelines.scoring.candidates import with_short_side_inputs


def test_bse_scores_equal_full_sdim_scores_and_rescoring_a_date_replaces_it(spark, generated_nights, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    nights = generated_nights.nightly
    # A copy: the other tests compare the nights' tables, which this one adds to.
    shutil.copytree(nights.lakehouse, tmp_path / "lakehouse")
    settings = nights.model_copy(update={"lakehouse": str(tmp_path / "lakehouse"), "registry": nights.registry.model_copy(
        update={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "model_name": "parity"})})
    before, day = generated_nights.days[-2], generated_nights.days[-1]
    vocab = vocabulary(settings.lakehouse, before)
    torch.manual_seed(3)
    config = ModelConfig(model="sdim", dense_features=DENSE_FEATURES, embedding_dim=settings.bse.embedding_dim, **vocab.sizes())
    model = build_model(config, stored_projection(settings.lakehouse, settings.bse).matrix)
    folder = save_model(tmp_path / "model", model, vocab, {"data_range": "untrained"})
    assert log_and_register(settings, "parity", {}, [], {}, folder, {"model": "sdim"})["version"] == "1"
    assert export_embeddings(settings, "1")["embedding_version"] == "parity-v1"
    build_signatures(spark, settings, before, version="parity-v1")
    built = build_candidates(spark, settings, day, version="parity-v1")
    assert built["by_source"]["impression"] > 0 and built["by_source"]["popular"] > 0 and built["with_bse"] > 0

    rows = DeltaTable(table_uri(settings.lakehouse, GOLD_CANDIDATES)).to_pyarrow_table(partitions=[("score_date", "=", str(day))])
    assert rows.num_rows == built["candidates"] and pc.max(pc.list_value_length(rows.column("long_item_ids"))).as_py() > 5
    lengths = (settings.examples.train_len, settings.examples.short_len)
    from_buckets = ModelReplica(str(folder), "1", *lengths, bse=True)(rows).column("score").to_numpy()
    from_sequences = ModelReplica(str(folder), "1", *lengths, bse=False)(rows).column("score").to_numpy()
    assert np.abs(from_buckets - from_sequences).max() < 1e-5

    def scores():
        table = DeltaTable(table_uri(settings.lakehouse, SCORES_CTR)).to_pyarrow_table(partitions=[("score_date", "=", str(day))])
        return sorted(zip(*(table.column(c).to_pylist() for c in ("user_id", "item_id", "score", "model_version")), strict=True))

    first = score_day(settings, day, "1")
    assert (first["long_side"], first["scores"], first["candidates"]) == ("bse", built["candidates"], built["candidates"])
    snapshot = scores()
    expected = sorted(zip(rows.column("user_id").to_pylist(), rows.column("item_id").to_pylist(), strict=True))
    assert [(u, i) for u, i, _, _ in snapshot] == expected
    direct = dict(zip(zip(rows.column("user_id").to_pylist(), rows.column("item_id").to_pylist(), strict=True), from_buckets, strict=True))
    assert max(abs(s - direct[(u, i)]) for u, i, s, _ in snapshot) < 1e-6
    second = score_day(settings, day, "1")
    assert second["scores"] == first["scores"] and scores() == snapshot


def test_bse_candidates_carry_the_short_tail_and_the_long_sides_summaries(spark):
    rows = spark.createDataFrame(
        [(7, 3, [1, 2, 3, 4, 5], [3, 3, 9, 3, 8], [10, 20, 30, 40, 50]), (8, 4, [], [], [])],
        "user_id long, category_id int, long_item_ids array<long>, long_category_ids array<int>, long_timestamps array<long>",
    )
    got = with_short_side_inputs(rows, ExampleSettings(train_len=4, short_len=2)).orderBy("user_id").collect()
    assert [(r.short_item_ids, r.short_category_ids, r.short_timestamps, r.long_length, r.long_category_share) for r in got] == [
        # The long side is the last train_len = 4 behaviors: categories 3, 9, 3, 8, two of them the candidate's.
        ([4, 5], [3, 8], [40, 50], 4, 0.5),
        ([], [], [], 0, 0.0),
    ]
