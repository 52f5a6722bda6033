"""CTR models: shapes and gradients, SDIM's hashing against the signatures job,
BSE mode against end to end, batches and metrics by hand, learning on
generated data, and training on Ray with a lost worker, registry and gate."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
import torch
from pyspark.sql import functions as F

from pipelines.bse.projection import stored_projection
from pipelines.bse.simhash import bucket_sums, random_projection, simhash_codes
from pipelines.config import MODEL_NAMES
from pipelines.ctr.base import ModelConfig
from pipelines.ctr.batches import BatchShape, Vocabulary, shape_for, to_batch
from pipelines.ctr.metrics import auc, calibration, gauc, logloss
from pipelines.ctr.zoo import MODELS, build_model, model_class
from pipelines.lakehouse.tables import (
    GOLD_ITEM_EMBEDDINGS,
    GOLD_ITEM_SIGNATURES,
    GOLD_TRAINING_EXAMPLES,
    table_uri,
)
from tests.conftest import settings_in

STATS = ["user_impressions", "user_clicks", "user_ctr", "user_dwell_mean_ms",
         "item_impressions", "item_clicks", "item_ctr", "item_dwell_mean_ms"]
NOW = 10**12


def _rows(rng: np.random.Generator, n: int, max_len: int, items: int = 200) -> pa.Table:
    lengths = rng.integers(0, max_len + 20, n)
    return pa.table({
        "user_id": rng.integers(1, 30, n), "item_id": rng.integers(1, items, n),
        "category_id": pa.array(rng.integers(0, 5, n), pa.int32()), "position": pa.array(rng.integers(0, 10, n), pa.int32()),
        "label": rng.integers(0, 2, n), "impression_ts": np.full(n, NOW),
        "long_item_ids": pa.array([rng.integers(1, items, k) for k in lengths], pa.list_(pa.int64())),
        "long_category_ids": pa.array([rng.integers(0, 5, k).astype(np.int32) for k in lengths], pa.list_(pa.int32())),
        "long_timestamps": pa.array([NOW - np.sort(rng.integers(1_000, 10**8, k))[::-1] for k in lengths], pa.list_(pa.int64())),
        **{c: rng.random(n) * 10 for c in STATS},
    })


VOCAB = Vocabulary.of(np.arange(1, 200), np.arange(0, 5), np.arange(1, 30))
PROJECTION = random_projection(32, 16, 3, seed=5)


def _model(name: str, bse_mode: bool = False):
    config = ModelConfig(model=name, bse_mode=bse_mode, **VOCAB.sizes())
    return build_model(config, PROJECTION if MODELS[name].uses_projection else None)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_gives_one_logit_per_example_and_gradients_reach_the_embeddings(name):
    torch.manual_seed(0)
    model = _model(name)
    batch = to_batch(_rows(np.random.default_rng(1), 32, 40), VOCAB, BatchShape(40, 10, sdim_inputs="e2e" if name == "sdim" else None))
    logits = model(batch)
    assert logits.shape == (32,) and torch.isfinite(logits).all()
    logits.sum().backward()
    assert model.item.weight.grad.abs().sum() > 0 and model.category.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for n, p in model.named_parameters() if n.startswith("head."))


def test_bse_mode_equals_end_to_end_sdim_given_the_same_embeddings():
    rng = np.random.default_rng(2)
    rows = _rows(rng, 48, 60)
    shape = BatchShape(60, 10, sdim_inputs="e2e")
    end_to_end = _model("sdim")
    batch = to_batch(rows, VOCAB, shape)
    # The bucket sums a signatures job would store for each user's long sequence,
    # gathered at the candidate's codes (numpy, from the same embeddings).
    embeddings = end_to_end.item.weight.detach().numpy()
    gathered = []
    for i in range(len(rows)):
        behaviors = batch["long_items"][i][batch["long_mask"][i]].numpy()
        vectors = embeddings[behaviors]
        _, sums = bucket_sums(simhash_codes(vectors, PROJECTION), vectors, 8) if len(behaviors) else (None, np.zeros((16, 8, 32)))
        candidate = simhash_codes(embeddings[batch["item"][i].item()][None], PROJECTION)[0]
        gathered.append(sums[np.arange(16), candidate].ravel().astype(np.float32))
    with_bse = rows.append_column("long_bse", pa.array(gathered, pa.list_(pa.float32())))
    bse = _model("sdim", bse_mode=True)
    bse.load_state_dict(end_to_end.state_dict())
    bse_batch = to_batch(with_bse, VOCAB, BatchShape(60, 10, sdim_inputs="bse"))
    torch.testing.assert_close(bse(bse_batch), end_to_end(batch), atol=1e-5, rtol=0)


def test_position_dropout_trains_the_unknown_slot_that_offline_candidates_carry():
    """Candidates scored offline have no slot yet (position index 0): training
    drops the position of a share of its rows to that index, so its embedding
    is learnt; without dropout, impressions never reach it."""
    from pipelines.ctr.training import train_epoch, with_position_dropout

    rows = _rows(np.random.default_rng(6), 2000, 20)
    batch = to_batch(rows, VOCAB, BatchShape(20, 10))
    dropped = with_position_dropout(batch, 0.25, torch.Generator().manual_seed(0))
    assert 0.22 < (dropped["position"] == 0).float().mean().item() < 0.28 and (batch["position"] > 0).all()
    kept = dropped["position"] != 0
    assert torch.equal(dropped["position"][kept], batch["position"][kept])
    assert all(torch.equal(dropped[k], batch[k]) for k in batch if k != "position")
    assert with_position_dropout(batch, 0.0, torch.Generator()) is batch

    def unknown_slot_after_training(share: float) -> torch.Tensor:
        torch.manual_seed(0)
        model = _model("din")
        before = model.position.weight[0].detach().clone()
        generator = torch.Generator().manual_seed(1)
        batches = [with_position_dropout(to_batch(rows.slice(i, 200), VOCAB, BatchShape(20, 10)), share, generator)
                   for i in range(0, 2000, 200)]
        train_epoch(model, torch.optim.Adam(model.parameters(), lr=0.01), batches)
        return (model.position.weight[0].detach() - before).abs().max()

    assert unknown_slot_after_training(0.0) == 0
    assert unknown_slot_after_training(0.1) > 1e-3


def test_batches_index_pad_on_the_left_and_bucket_time_gaps():
    rows = pa.table({
        "user_id": [7, 99], "item_id": [30, 31], "category_id": pa.array([2, None], pa.int32()),
        "position": pa.array([0, None], pa.int32()), "label": [1, 0], "impression_ts": [NOW, NOW],
        "long_item_ids": pa.array([[10, 11, 12], []], pa.list_(pa.int64())),
        "long_category_ids": pa.array([[1, 2, 2], []], pa.list_(pa.int32())),
        # 2 hours, 3 minutes and 30 seconds before the impression.
        "long_timestamps": pa.array([[NOW - 7_200_000, NOW - 180_000, NOW - 30_000], []], pa.list_(pa.int64())),
        **{c: [1.0, None] for c in STATS},
    })
    vocab = Vocabulary.of([10, 11, 12, 30], [1, 2], [7])
    batch = to_batch(rows, vocab, BatchShape(long_len=4, short_len=2, sdim_inputs="e2e"))
    assert batch["user"].tolist() == [1, 0] and batch["item"].tolist() == [4, 0] and batch["category"].tolist() == [2, 0]
    assert batch["position"].tolist() == [1, 0]
    # Padded to the batch's longest sequence (3, under long_len = 4).
    assert batch["long_items"].tolist() == [[1, 2, 3], [0, 0, 0]]
    assert batch["long_mask"].tolist() == [[True, True, True], [False] * 3]
    assert batch["long_gaps"][0].tolist() == [6, 2, 0]  # log2(1 + minutes): 120 min, 3 min, 0.5 min
    assert batch["short_items"].tolist() == [[2, 3], [0, 0]]
    assert batch["long_unique"].tolist() == [1, 2, 3]
    assert batch["long_pairs"].tolist() == [[0, 0, 1], [0, 1, 1], [0, 2, 1]]
    # Without share features the dense part knows the short length (2), nothing of the long sequence.
    assert batch["dense"].shape == (2, 9) and batch["dense"][0, -1] == pytest.approx(np.log1p(2))
    assert batch["dense"][1].tolist() == [0.0] * 9
    shared = to_batch(rows, vocab, BatchShape(long_len=4, short_len=2, share_features=True))
    # With them: the long and the short sequence's share in the candidate's category, and the long length (3).
    assert shared["dense"][0, -3:].tolist() == pytest.approx([2 / 3, 1.0, np.log1p(3)])
    assert shared["dense"][1].tolist() == [0.0] * 12


def test_metrics_by_hand():
    labels = np.array([0, 1, 0, 1, 1, 0])
    scores = np.array([0.1, 0.9, 0.3, 0.8, 0.3, 0.3])
    users = np.array([1, 1, 1, 2, 2, 2])
    assert auc(labels, scores) == pytest.approx(8 / 9)  # one tie counts a half
    assert gauc(users, labels, scores) == pytest.approx((3 * 1.0 + 3 * 0.75) / 6)
    assert auc(np.ones(3), np.arange(3)) is None
    assert logloss(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    assert calibration(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]), bins=2) == [
        {"decile": 1, "predicted": 0.15, "observed": 0.0, "rows": 2},
        {"decile": 2, "predicted": 0.85, "observed": 1.0, "rows": 2},
    ]


def test_sdim_hashes_like_the_signatures_job(spark, generated_nights):
    settings = generated_nights.nightly
    projection = stored_projection(settings.lakehouse, settings.bse)
    version = settings.bse.bootstrap_version

    def load(table):
        return spark.read.format("delta").load(table_uri(settings.lakehouse, table)).where(F.col("version") == version)

    embeddings = {r["item_id"]: r["vector"] for r in load(GOLD_ITEM_EMBEDDINGS).limit(300).collect()}
    signatures = {r["item_id"]: r["codes"] for r in load(GOLD_ITEM_SIGNATURES).where(F.col("item_id").isin(list(embeddings))).collect()}
    ids = sorted(embeddings)
    model = build_model(ModelConfig(model="sdim", items=len(ids) + 1, categories=2, users=2,
                                    embedding_dim=settings.bse.embedding_dim), projection.matrix)
    with torch.no_grad():
        model.item.weight[1:] = torch.tensor(np.array([embeddings[i] for i in ids]))
    codes = simhash_codes(model.item.weight[1:].detach(), model.projection)
    assert codes.tolist() == [signatures[i] for i in ids]


def _examples(settings, first: dt.date, last: dt.date):
    from pipelines.ctr.datasets import example_batches, example_files

    return list(example_batches(example_files(settings.lakehouse, first, last), 512))


def test_every_model_clearly_beats_a_popularity_baseline_on_generated_days(generated_nights):
    """Trained in one process (the Ray run is tested below) on three generated
    days, scored on the next one against item click-through as of the day before."""
    from pipelines.ctr.datasets import vocabulary
    from pipelines.ctr.training import predictions, train_epoch

    settings, days = generated_nights.nightly, generated_nights.days
    vocab = vocabulary(settings.lakehouse, days[-2])
    projection = stored_projection(settings.lakehouse, settings.bse).matrix
    train_rows, test_rows = _examples(settings, days[1], days[-2]), _examples(settings, days[-1], days[-1])
    labels = np.concatenate([r.column("label").to_numpy() for r in test_rows])
    popularity = np.concatenate([np.nan_to_num(r.column("item_ctr").to_numpy(zero_copy_only=False).astype(float), nan=0.0) for r in test_rows])
    baseline = auc(labels, popularity)
    results = {}
    for name in sorted(MODELS):
        torch.manual_seed(0)
        shape = BatchShape(long_len=256, short_len=50, sdim_inputs="e2e" if name == "sdim" else None)
        model = build_model(ModelConfig(model=name, **vocab.sizes()), projection if MODELS[name].uses_projection else None)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
        train_epoch(model, optimizer, (to_batch(r, vocab, shape) for r in train_rows))
        _, _, scores = predictions(model, (to_batch(r, vocab, shape) for r in test_rows))
        results[name] = auc(labels, scores)
    assert all(value > baseline + 0.03 for value in results.values()), (baseline, results)


def test_training_on_ray_survives_a_lost_worker_and_registers_a_model_that_the_gate_promotes(
    spark, generated_nights, tmp_path, monkeypatch
):
    """Two Ray Train workers; the second is killed (SIGKILL) in the middle of
    epoch 1 and the run resumes from epoch 0's checkpoint, not from scratch and
    not from the steps the dead worker took. Then the registry, the
    gate against no champion, the embedding export and evaluation by CLI."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from pipelines.ctr.artifacts import load_model
    from pipelines.ctr.distributed import KILLED_AFTER_BATCHES
    from pipelines.ctr.registry import (
        champion_version,
        current_embedding_version,
        downloaded_model,
        model_versions,
    )
    from pipelines.stages.gate import gate
    from pipelines.stages.train import train_model

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    nights = generated_nights.nightly
    settings = nights.model_copy(update={
        "train": nights.train.model_copy(update={"epochs": 2, "patience": 5, "progress_every": 0}),
        "registry": nights.registry.model_copy(update={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"}),
    })
    days = generated_nights.days
    figures = train_model(settings, days[-3], days[-2], "sdim", kill_worker_mid_epoch=1)
    assert (figures["epochs"], figures["restarted_at_epoch"]) == (2, 1)
    # Killed mid-epoch: the epoch had more steps than the worker took before it died.
    assert figures["train_steps"] // 2 > KILLED_AFTER_BATCHES
    # Resumed with epoch 0's optimizer state: Adam counted the steps of both
    # epochs once (a fresh one would count epoch 1's only; the steps the
    # workers took before the kill would add to them), and the loss went on falling.
    assert figures["optimizer_steps"] == figures["train_steps"]
    assert figures["train_losses"][1] < figures["train_losses"][0]
    assert figures["version"] == "1" and figures["best_valid_auc"] > 0.6

    folder = downloaded_model(settings, "1")
    assert sorted(p.name for p in Path(folder).iterdir()) == ["config.json", "model.safetensors"]
    model, vocab, metadata = load_model(folder)
    assert model.config.model == "sdim" and metadata["data_range"] == f"{days[-3]}..{days[-2]}"
    assert metadata["projection_sha256"] == stored_projection(settings.lakehouse, settings.bse).sha256

    assert champion_version(settings) is None
    decision = gate(settings, "1", days[-1])
    assert decision["promoted"] and decision["champion"] is None and decision["embedding_version"] == "seqlake-ctr-v1"
    assert champion_version(settings) == "1" and current_embedding_version(settings) == "seqlake-ctr-v1"
    assert [v.aliases for v in model_versions(settings)] == [("champion",)]
    # Using the registry must not pin this process (and the jobs it launches) to its store.
    assert "MLFLOW_TRACKING_URI" not in os.environ
    exported = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_ITEM_EMBEDDINGS)).where(F.col("version") == "seqlake-ctr-v1")
    assert exported.count() == len(vocab.items)

    done = subprocess.run(
        [str(Path(sys.executable).parent / "seqlake"), "evaluate", "model", "--version", "1", "--date", str(days[-1]), "--json",
         "--lakehouse", settings.lakehouse, "--truth", settings.truth, "--set", f"registry.tracking_uri={settings.registry.tracking_uri}"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    evaluated = json.loads(done.stdout.strip().splitlines()[-1])
    assert evaluated["auc"] == decision["candidate_auc"] and 0.5 < evaluated["model_over_oracle"] <= 1.05
    assert {"auc", "gauc", "logloss", "calibration", "oracle_auc"} <= set(evaluated)


def test_a_bse_mode_model_trains_on_the_sums_of_one_embedding_version_only(generated_nights, tmp_path):
    """BSE mode learns from sums of one embedding and scores from sums of that
    one, which it records: a window whose examples carry no sums (here
    examples.bse_long_side is off), or sums under two versions, or sums from
    another projection, is refused before anything trains."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from pipelines.bse.projection import ProjectionMismatchError
    from pipelines.ctr.datasets import bse_sums_version, example_files
    from pipelines.errors import MissingInputError
    from pipelines.stages.train import train_model

    settings, days = generated_nights.nightly, generated_nights.days
    with pytest.raises(MissingInputError, match=f"examples {days[-3]}..{days[-2]} carry BSE sums under {days[-3]}: None"):
        train_model(settings, days[-3], days[-2], "sdim", bse=True)

    lakehouse = str(tmp_path)
    sha = "ab" * 32
    for day, version in ((days[0], "v1"), (days[1], "v1"), (days[2], "v2")):
        write_deltalake(table_uri(lakehouse, GOLD_TRAINING_EXAMPLES), pa.table({
            "event_date": pa.array([day] * 2, pa.date32()), "bse_version": [version] * 2, "bse_projection_sha256": [sha] * 2,
        }), partition_by=["event_date"], mode="append")
    assert bse_sums_version(lakehouse, example_files(lakehouse, days[0], days[1]), sha) == "v1"
    with pytest.raises(MissingInputError, match=f"carry BSE sums under {days[0]}: v1, {days[1]}: v1, {days[2]}: v2"):
        bse_sums_version(lakehouse, example_files(lakehouse, days[0], days[2]), sha)
    with pytest.raises(ProjectionMismatchError, match="BSE sums built with projection hash abababababab"):
        bse_sums_version(lakehouse, example_files(lakehouse, days[0], days[1]), "cd" * 32)


def test_what_a_model_needs_is_stated_on_its_class_and_read_from_there():
    assert sorted(MODELS) == sorted(MODEL_NAMES)
    abilities = {name: (cls.uses_projection, cls.has_bse_mode) for name, cls in MODELS.items()}
    assert abilities == {"sdim": (True, True), "din": (False, False), "long_attention": (False, False), "avg_pool": (False, False),
                         "sim": (False, False), "eta": (True, False), "twin": (False, False)}
    sdim = ModelConfig("sdim", items=5, categories=3, users=2)
    assert shape_for(sdim, 40, 10).sdim_inputs == "e2e" and sdim.label == "sdim"
    in_bse_mode = ModelConfig("sdim", items=5, categories=3, users=2, bse_mode=True)
    assert shape_for(in_bse_mode, 40, 10).sdim_inputs == "bse" and in_bse_mode.label == "sdim-bse"
    assert shape_for(ModelConfig("din", items=5, categories=3, users=2), 40, 10).sdim_inputs is None
    with pytest.raises(ValueError, match="unknown model 'dien'; known: din, long_attention, avg_pool, sdim, sim, eta, twin"):
        model_class("dien")


@pytest.mark.xdist_group("generated_nights")  # the worker where the training tests run Ray
def test_examples_are_held_in_the_object_store_while_they_fit_its_budget_the_most_read_first(tmp_path):
    import pyarrow.parquet as pq
    import ray.data
    from ray.data.dataset import MaterializedDataset

    from pipelines.ctr.datasets import arrow_bytes, held_in_object_store
    from pipelines.lakehouse.session import ray_runtime

    path = str(tmp_path / "rows.parquet")
    pq.write_table(pa.table({"a": np.arange(10_000, dtype=np.int64), "b": np.zeros(10_000)}), path,
                   compression="none", use_dictionary=False)
    size = arrow_bytes([path], ["a"])
    assert 80_000 <= size < 81_000  # 10,000 int64 values and their page headers; column b is not read
    assert arrow_bytes([path], ["a", "b"]) >= 2 * 80_000
    ray_runtime(settings_in(tmp_path).ray)
    valid, train = ray.data.read_parquet(path), ray.data.read_parquet(path)
    for budget, held in ((2 * size, [True, True]), (1.5 * size, [True, False]), (0.5 * size, [False, False])):
        datasets = held_in_object_store([(valid, size), (train, size)], budget)
        assert [isinstance(d, MaterializedDataset) for d in datasets] == held
        assert [d.count() for d in datasets] == [10_000, 10_000]
