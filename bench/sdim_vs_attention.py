"""SDIM against target attention over the long sequence: train-step time and AUC, measured in one run.

Part 1, speed: the same batches (B = 256, d = 32, 16 hashes of 3 bits, items
drawn by a Pareto popularity over 20,000) at long-sequence lengths 256, 1,024
and 4,096; forward + backward + optimizer step of SDIM end to end, SDIM in BSE
mode, LongAttention, DIN and AvgPool on 2 threads, best of a few steps.
Goals: SDIM >= 5x faster than LongAttention at 1,024 and >= 10x at 4,096.

Part 2, accuracy: generated days run through the pipeline (ingest, clean,
sequences, signatures, examples with BSE bucket sums), every model trained in
one process on the same examples (early stopping on a held-out day) and
scored on the last day, next to the oracle AUC of the true click
probabilities on the same rows. Goals: SDIM within 0.002 of LongAttention,
both clearly above DIN, model / oracle >= 0.97.

    python bench/sdim_vs_attention.py [--users 600] [--days 14] [--epochs 3] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402

from pipelines.bse.simhash import random_projection  # noqa: E402
from pipelines.ctr.base import ModelConfig  # noqa: E402
from pipelines.ctr.batches import BatchShape, Vocabulary, to_batch  # noqa: E402
from pipelines.ctr.metrics import auc  # noqa: E402
from pipelines.ctr.zoo import build_model  # noqa: E402

VARIANTS = [("sdim", "e2e"), ("sdim", "bse"), ("long_attention", None), ("din", None), ("avg_pool", None)]
STATS = ["user_impressions", "user_clicks", "user_ctr", "user_dwell_mean_ms",
         "item_impressions", "item_clicks", "item_ctr", "item_dwell_mean_ms"]


def label(model: str, inputs: str | None) -> str:
    return f"{model}_{inputs}" if model == "sdim" else model


def step_rows(rng: np.random.Generator, batch: int, length: int, items: int, signatures: int, dim: int) -> pa.Table:
    popularity = rng.pareto(1.2, items) + 1
    p = popularity / popularity.sum()
    now = 10**12
    return pa.table({
        "user_id": rng.integers(1, 5_000, batch), "item_id": rng.integers(1, items, batch),
        "category_id": pa.array(rng.integers(0, 40, batch), pa.int32()), "position": pa.array(rng.integers(0, 10, batch), pa.int32()),
        "label": rng.integers(0, 2, batch), "impression_ts": np.full(batch, now),
        "long_item_ids": pa.array([rng.choice(items, length, p=p) + 1 for _ in range(batch)], pa.list_(pa.int64())),
        "long_category_ids": pa.array([rng.integers(0, 40, length).astype(np.int32) for _ in range(batch)], pa.list_(pa.int32())),
        "long_timestamps": pa.array([now - np.sort(rng.integers(10**4, 10**9, length))[::-1] for _ in range(batch)], pa.list_(pa.int64())),
        **{c: rng.random(batch) for c in STATS},
        "long_bse": pa.array([rng.standard_normal(signatures * dim).astype(np.float32) for _ in range(batch)], pa.list_(pa.float32())),
    })


def step_times(lengths: list[int], batch: int = 256, steps: int = 4) -> dict[str, float]:
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    items, dim, signatures = 20_000, 32, 16
    vocab = Vocabulary.of(np.arange(1, items + 1), np.arange(0, 40), np.arange(1, 5_000))
    projection = random_projection(dim, signatures, 3, seed=1)
    figures: dict[str, float] = {}
    for length in lengths:
        rows = step_rows(rng, batch, length, items, signatures, dim)
        line = []
        for model_name, inputs in VARIANTS:
            config = ModelConfig(model=model_name, bse_mode=inputs == "bse", **vocab.sizes())
            model = build_model(config, projection if model_name == "sdim" else None)
            optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
            tensors = to_batch(rows, vocab, BatchShape(long_len=length, short_len=50, sdim_inputs=inputs))
            best = float("inf")
            for _ in range(steps):
                started = time.perf_counter()
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(tensors), tensors["label"])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                best = min(best, time.perf_counter() - started)
            figures[f"step_ms_{label(model_name, inputs)}_L{length}"] = round(best * 1000, 1)
            line.append(f"{label(model_name, inputs)} {best * 1000:,.0f} ms")
        for inputs in ("e2e", "bse"):
            figures[f"speedup_sdim_{inputs}_vs_long_attention_L{length}"] = round(
                figures[f"step_ms_long_attention_L{length}"] / figures[f"step_ms_sdim_{inputs}_L{length}"], 2
            )
        print(f"L = {length:>5}: " + ", ".join(line) + f"; LongAttention / SDIM: end to end "
              f"{figures[f'speedup_sdim_e2e_vs_long_attention_L{length}']}x, BSE {figures[f'speedup_sdim_bse_vs_long_attention_L{length}']}x",
              flush=True)
    return figures


def accuracy(users: int, days: int, epochs: int, work: Path) -> dict[str, object]:
    from pipelines.bse.projection import stored_projection
    from pipelines.config import load_settings
    from pipelines.ctr.datasets import example_batches, example_files, vocabulary
    from pipelines.ctr.evaluation import oracle_comparison
    from pipelines.ctr.training import EarlyStopping, predictions, train_epoch
    from pipelines.lakehouse.files import landing_dates
    from pipelines.lakehouse.session import spark_session
    from pipelines.stages.clean import clean_dates
    from pipelines.stages.examples import build_examples
    from pipelines.stages.ingest import ingest_date
    from pipelines.stages.sequences import build_sequences
    from pipelines.stages.signatures import build_signatures
    from pipelines.synth.generate import generate

    settings = load_settings(overrides=[
        f"lakehouse={work / 'lakehouse'}", f"landing={work / 'landing'}", f"truth={work / 'truth'}",
        f"generator.users={users}", f"generator.days={days}", "examples.bse_long_side=true",
    ])
    started = time.perf_counter()
    generate(settings.generator, settings.landing, settings.truth)
    spark = spark_session(settings, "seqlake-bench-sdim")
    dates = landing_dates(settings.landing)
    for day in dates:
        ingest_date(spark, settings, day)
    for stage in (clean_dates, build_sequences, build_signatures, build_examples):
        stage(spark, settings, dates[0], dates[-1])
    spark.stop()
    print(f"pipeline over {days} days of {users:,} users: {time.perf_counter() - started:.0f} s", flush=True)

    train_days, valid_day, test_day = (dates[1], dates[-3]), dates[-2], dates[-1]
    vocab = vocabulary(settings.lakehouse, valid_day)
    projection = stored_projection(settings.lakehouse, settings.bse).matrix
    columns = None

    def rows(first: dt.date, last: dt.date) -> list[pa.RecordBatch]:
        from pipelines.ctr.batches import EXAMPLE_COLUMNS

        wanted = EXAMPLE_COLUMNS + ["impression_id", "long_bse"]
        return list(example_batches(example_files(settings.lakehouse, first, last), 256, columns or wanted))

    train_rows, valid_rows, test_rows = rows(*train_days), rows(valid_day, valid_day), rows(test_day, test_day)
    keys = pa.Table.from_batches(test_rows).select(["user_id", "impression_id", "item_id"]).to_pandas()
    labels = np.concatenate([b.column("label").to_numpy() for b in test_rows])
    results: dict[str, object] = {"train_examples": sum(b.num_rows for b in train_rows), "test_examples": int(len(labels))}
    for model_name, inputs in VARIANTS:
        torch.manual_seed(0)
        shape = BatchShape(long_len=settings.examples.train_len, short_len=settings.examples.short_len, sdim_inputs=inputs)
        config = ModelConfig(model=model_name, bse_mode=inputs == "bse", **vocab.sizes())
        model = build_model(config, projection if model_name == "sdim" else None)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.train.learning_rate)
        stopping, best, trained_for = EarlyStopping(patience=0), None, time.perf_counter()
        for epoch in range(epochs):
            train_epoch(model, optimizer, (to_batch(b, vocab, shape) for b in train_rows))
            _, valid_labels, valid_scores = predictions(model, (to_batch(b, vocab, shape) for b in valid_rows))
            if stopping.update(epoch, auc(valid_labels, valid_scores)):
                best = {k: v.clone() for k, v in model.state_dict().items()}
            if stopping.should_stop:
                break
        model.load_state_dict(best)
        _, _, scores = predictions(model, (to_batch(b, vocab, shape) for b in test_rows))
        compared = oracle_comparison(keys.assign(label=labels, probability=scores), settings.truth, test_day)
        name = label(model_name, inputs)
        results[f"auc_{name}"] = round(auc(labels, scores), 4)
        results[f"model_over_oracle_{name}"] = compared["model_over_oracle"]
        results["oracle_auc"] = compared["oracle_auc"]
        print(f"{name:<16} AUC {results[f'auc_{name}']:.4f}  model/oracle {compared['model_over_oracle']}  "
              f"(best epoch {stopping.best_epoch}, {time.perf_counter() - trained_for:.0f} s)", flush=True)
    results["sdim_e2e_minus_long_attention_auc"] = round(results["auc_sdim_e2e"] - results["auc_long_attention"], 4)
    results["sdim_bse_minus_sdim_e2e_auc"] = round(results["auc_sdim_bse"] - results["auc_sdim_e2e"], 4)
    results["long_attention_minus_din_auc"] = round(results["auc_long_attention"] - results["auc_din"], 4)
    print(f"oracle AUC {results['oracle_auc']}; SDIM - LongAttention {results['sdim_e2e_minus_long_attention_auc']:+.4f}; "
          f"LongAttention - DIN {results['long_attention_minus_din_auc']:+.4f}; BSE mode - end to end "
          f"{results['sdim_bse_minus_sdim_e2e_auc']:+.4f}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lengths", default="256,1024,4096")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures: dict[str, object] = step_times([int(x) for x in args.lengths.split(",")])
    if not args.skip_accuracy:
        work = Path(tempfile.mkdtemp(prefix="seqlake-bench-sdim-"))
        try:
            figures.update(accuracy(args.users, args.days, args.epochs, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
