"""Ray Train's overhead: examples/s of one Ray Train worker against a plain torch loop,
on the same rows, model, batch size and threads. Goal: overhead <= 15%.

Rows are written once to Parquet. The plain loop reads them into memory once
(pyarrow) and slices its batches from there; the Ray worker reads them as the
train stage does (pipelines.ctr.datasets.held_in_object_store: held in Ray's
object store when they fit train.object_store_share of it, else streamed from
the file every epoch; --stream forces the latter). Both time only their epochs
(not Ray's start-up), over the same number of epochs, after one warm-up epoch each.

    python bench/ray_train_overhead.py [--rows 60000] [--epochs 3] [--model din] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from pipelines.config import TrainSettings  # noqa: E402
from pipelines.ctr.base import ModelConfig  # noqa: E402
from pipelines.ctr.batches import BatchShape, Vocabulary, to_batch  # noqa: E402
from pipelines.ctr.datasets import arrow_bytes, held_in_object_store  # noqa: E402
from pipelines.ctr.training import train_epoch  # noqa: E402
from pipelines.ctr.zoo import build_model  # noqa: E402

ITEMS, USERS, CATEGORIES, LONG, THREADS = 20_000, 5_000, 40, 200, 2
STATS = ["user_impressions", "user_clicks", "user_ctr", "user_dwell_mean_ms",
         "item_impressions", "item_clicks", "item_ctr", "item_dwell_mean_ms"]


def synthetic_rows(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(LONG // 2, LONG, n)
    now = 10**12
    return pa.table({
        "user_id": rng.integers(1, USERS, n), "item_id": rng.integers(1, ITEMS, n),
        "category_id": pa.array(rng.integers(0, CATEGORIES, n), pa.int32()),
        "position": pa.array(rng.integers(0, 12, n), pa.int32()), "label": (rng.random(n) < 0.15).astype(np.int64),
        "impression_ts": np.full(n, now),
        "long_item_ids": pa.array([rng.integers(1, ITEMS, k) for k in lengths], pa.list_(pa.int64())),
        "long_category_ids": pa.array([rng.integers(0, CATEGORIES, k).astype(np.int32) for k in lengths], pa.list_(pa.int32())),
        "long_timestamps": pa.array([now - np.sort(rng.integers(10**4, 10**9, k))[::-1] for k in lengths], pa.list_(pa.int64())),
        **{c: rng.random(n) for c in STATS},
    })


def ray_worker(config: dict) -> None:
    import ray.train

    torch.set_num_threads(config["threads"])
    torch.manual_seed(0)
    vocab, shape = Vocabulary(**config["vocab"]), BatchShape(**config["shape"])
    model = build_model(ModelConfig.from_json(config["model"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    shard = ray.train.get_dataset_shard("train")
    rates = []
    for _ in range(config["epochs"] + 1):
        started = time.perf_counter()
        batches = shard.iter_batches(batch_size=config["batch"], batch_format="pyarrow")
        done = train_epoch(model, optimizer, (to_batch(b, vocab, shape) for b in batches))
        rates.append(done["train_examples"] / (time.perf_counter() - started))
    # Ray Train keeps the metrics of reports that carry a checkpoint.
    folder = tempfile.mkdtemp(prefix="seqlake-bench-report-")
    Path(folder, "rate.json").write_text(json.dumps({"examples_per_s": float(np.mean(rates[1:]))}))
    ray.train.report({"examples_per_s": float(np.mean(rates[1:]))}, checkpoint=ray.train.Checkpoint.from_directory(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--model", default="din")
    parser.add_argument("--stream", action="store_true", help="stream the rows from the file every epoch")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqlake-bench-ray-"))
    try:
        rows = synthetic_rows(args.rows)
        path = str(work / "rows.parquet")
        pq.write_table(rows, path, row_group_size=8192)
        vocab = Vocabulary.of(np.arange(1, ITEMS), np.arange(0, CATEGORIES), np.arange(1, USERS))
        shape = BatchShape(long_len=LONG, short_len=50)
        config = ModelConfig(model=args.model, **vocab.sizes())

        torch.set_num_threads(THREADS)
        torch.manual_seed(0)
        model = build_model(config)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
        in_memory = pq.read_table(path)
        rates = []
        for _ in range(args.epochs + 1):
            started = time.perf_counter()
            done = train_epoch(model, optimizer, (to_batch(b, vocab, shape) for b in in_memory.to_batches(max_chunksize=args.batch)))
            rates.append(done["train_examples"] / (time.perf_counter() - started))
        plain = float(np.mean(rates[1:]))
        print(f"plain torch loop:      {plain:,.0f} examples/s ({args.model}, batch {args.batch}, {THREADS} threads)")

        import ray
        import ray.data
        import ray.train
        from ray.data.dataset import MaterializedDataset
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        ray.init(num_cpus=THREADS + 1, include_dashboard=False, logging_level="WARNING", _temp_dir=str(work / "ray"))
        budget = 0 if args.stream else TrainSettings().object_store_share * ray.cluster_resources()["object_store_memory"]
        (train_ds,) = held_in_object_store([(ray.data.read_parquet(path), arrow_bytes([path], rows.column_names))], budget)
        held = isinstance(train_ds, MaterializedDataset)
        trainer = TorchTrainer(
            ray_worker,
            train_loop_config={"vocab": {k: getattr(vocab, k) for k in ("items", "categories", "users")}, "shape": shape.__dict__,
                               "model": config.to_json(), "epochs": args.epochs, "batch": args.batch, "threads": THREADS},
            datasets={"train": train_ds},
            scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": THREADS}),
            run_config=RunConfig(storage_path=str(work / "runs"), name="overhead"),
        )
        on_ray = float(trainer.fit().metrics["examples_per_s"])
        ray.shutdown()
        overhead = 1 - on_ray / plain
        print(f"Ray Train, 1 worker:   {on_ray:,.0f} examples/s ({'held in the object store' if held else 'streamed from the file'})")
        print(f"overhead: {overhead:.1%} (goal <= 15%)")
        if args.json:
            print(json.dumps({"model": args.model, "rows": args.rows, "plain_examples_per_s": round(plain),
                              "ray_train_examples_per_s": round(on_ray), "ray_train_overhead": round(overhead, 4), "held_in_object_store": held,
                              "goal_met": overhead <= 0.15}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
