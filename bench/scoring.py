"""Offline scoring: Ray Data against a plain torch loop, and time per row against history length.

Part 1: the same candidate rows (SDIM in BSE mode, long side as precomputed
bucket sums) scored by Ray Data's actor pool (2 replicas of 1 thread, 0.5 CPU
each) and by a plain loop in one process with 2 threads; rows/s of each and
the ratio (goal >= 80%). Both time the scoring of every row after start-up:
the plain loop after its model loaded, the pool from the first batch a replica
began to the last one ended (its replicas stamp them; each execution of a
Ray dataset starts its actors anew, so a warm-up run does not warm the timed
one). The pool's rate with its actors' start-up is printed beside it.

Part 2: scoring time per row when the users' histories hold L = 256, 1,024
and 10,000 behaviors, SDIM from BSE buckets (goal: flat) next to SDIM end to
end on the raw sequence. The candidate rows carry what `seqlake candidates`
writes: the bucket sums (all L behaviors folded in) and the last
examples.train_len behaviors.

    python bench/scoring.py [--rows 100000] [--json]
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
import pyarrow.compute as pc  # noqa: E402
import pyarrow.dataset as ds  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import torch  # noqa: E402

from pipelines.bse.simhash import random_projection  # noqa: E402
from pipelines.ctr.artifacts import ModelFiles, save_model  # noqa: E402
from pipelines.ctr.base import ModelConfig  # noqa: E402
from pipelines.ctr.batches import Vocabulary  # noqa: E402
from pipelines.ctr.zoo import build_model  # noqa: E402
from pipelines.scoring.batch_scoring import ModelReplica, ScoringPlan  # noqa: E402

ITEMS, USERS, CATEGORIES, DIM, HASHES, TRAIN_LEN, SHORT_LEN = 20_000, 5_000, 40, 32, 16, 1024, 50
STATS = ["user_impressions", "user_clicks", "user_ctr", "user_dwell_mean_ms",
         "item_impressions", "item_clicks", "item_ctr", "item_dwell_mean_ms"]


def candidate_rows(n: int, history: int, rng: np.random.Generator) -> pa.Table:
    """Rows as `seqlake candidates` writes them: the last train_len behaviors,
    their short tail and summaries, the bucket sums of all `history`."""
    kept, short = min(history, TRAIN_LEN), min(history, SHORT_LEN)
    now = 10**12
    items = rng.integers(1, ITEMS, (n, kept))
    categories = rng.integers(0, CATEGORIES, (n, kept)).astype(np.int32)
    times = np.broadcast_to(now - np.arange(kept, 0, -1) * 60_000, (n, kept))
    candidate_categories = rng.integers(0, CATEGORIES, n)

    def lists(values: np.ndarray) -> pa.ListArray:
        return pa.ListArray.from_arrays(np.arange(0, values.size + 1, values.shape[1], dtype=np.int32), pa.array(values.ravel()))

    return pa.table({
        "user_id": rng.integers(1, USERS, n), "item_id": rng.integers(1, ITEMS, n),
        "category_id": pa.array(candidate_categories, pa.int32()), "position": pa.nulls(n, pa.int32()),
        "impression_ts": np.full(n, now),
        "long_item_ids": lists(items), "long_category_ids": lists(categories), "long_timestamps": lists(times),
        "short_item_ids": lists(items[:, -short:]), "short_category_ids": lists(categories[:, -short:]),
        "short_timestamps": lists(times[:, -short:]),
        "long_length": pa.array(np.full(n, kept), pa.int32()),
        "long_category_share": (categories == candidate_categories[:, None]).mean(axis=1),
        **{c: rng.random(n) for c in STATS},
        "long_bse": pa.FixedSizeListArray.from_arrays(pa.array(rng.standard_normal(n * HASHES * DIM).astype(np.float32)), HASHES * DIM)
        .cast(pa.list_(pa.float32())),
        "bse_version": pa.array(["v1"] * n),
        "candidate_source": pa.array(["recent"] * n), "score_date": pa.array([dt.date(2026, 11, 5)] * n, pa.date32()),
    })


def plan(bse: bool, rows: int) -> ScoringPlan:
    """Every candidate from its BSE sums (published under "v1"), or every one end to end."""
    return ScoringPlan("v1", rows, 0) if bse else ScoringPlan(None, 0, rows)


def plain_rows_per_s(files: ModelFiles, path: Path, batch: int, bse: bool) -> float:
    """Rows/s of one process with 2 threads, reading the columns `seqlake score` reads."""
    torch.set_num_threads(2)
    scoring = plan(bse, 1)
    replica = ModelReplica(files, "1", TRAIN_LEN, SHORT_LEN, embedding_version=scoring.embedding_version)
    started, rows = time.perf_counter(), 0
    for part in ds.dataset(str(path)).to_batches(batch_size=batch, columns=scoring.columns()):
        rows += replica(pa.Table.from_batches([part])).num_rows
    return rows / (time.perf_counter() - started)


class TimedReplica(ModelReplica):
    """A replica that stamps each batch it scores with when it began and ended (wall clock, seconds)."""

    def __call__(self, rows: pa.Table) -> pa.Table:
        began = time.time()
        scored = super().__call__(rows)
        stamps = {"began": pa.array([began] * scored.num_rows), "ended": pa.array([time.time()] * scored.num_rows)}
        return scored.append_column("began", stamps["began"]).append_column("ended", stamps["ended"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="seqlake-bench-scoring-"))
    rng = np.random.default_rng(0)
    try:
        vocab = Vocabulary.of(np.arange(1, ITEMS), np.arange(0, CATEGORIES), np.arange(1, USERS))
        torch.manual_seed(0)
        model = build_model(ModelConfig(model="sdim", **vocab.sizes()), random_projection(DIM, HASHES, 3, seed=1))
        files = ModelFiles.read(save_model(work / "model", model, vocab, {}))
        figures: dict[str, object] = {"rows": args.rows}

        path = work / "candidates.parquet"
        pq.write_table(candidate_rows(args.rows, 200, rng), path, row_group_size=8192)
        plain = plain_rows_per_s(files, path, args.batch, bse=True)
        print(f"plain torch loop (2 threads):            {plain:,.0f} rows/s", flush=True)

        import ray
        import ray.data

        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", _temp_dir=str(work / "ray"))
        ray.data.DataContext.get_current().enable_progress_bars = False
        dataset = ray.data.read_parquet(str(path), columns=plan(True, 1).columns()).materialize()  # reading is not what is compared
        scored = dataset.map_batches(
            TimedReplica, fn_constructor_kwargs={"model_files": files, "version": "1", "long_len": TRAIN_LEN,
                                                 "short_len": SHORT_LEN, "embedding_version": "v1", "threads": 1},
            batch_size=args.batch, batch_format="pyarrow", concurrency=2, num_cpus=0.5,
        )
        # Each execution starts its own actors: the replicas' own stamps time the scoring,
        # from the first batch begun to the last ended, without the actors' start-up.
        executed = time.perf_counter()
        stamps = pa.concat_tables(ray.get(scored.select_columns(["began", "ended"]).to_arrow_refs()))
        with_start_up = stamps.num_rows / (time.perf_counter() - executed)
        on_ray = stamps.num_rows / (pc.max(stamps["ended"]).as_py() - pc.min(stamps["began"]).as_py())
        ray.shutdown()
        figures.update({"plain_rows_per_s": round(plain), "ray_data_rows_per_s": round(on_ray),
                        "ray_data_over_plain": round(on_ray / plain, 3),
                        "ray_data_rows_per_s_with_start_up": round(with_start_up)})
        print(f"Ray Data, 2 replicas x 1 thread:         {on_ray:,.0f} rows/s = {on_ray / plain:.0%} of the plain loop (goal >= 80%); "
              f"{with_start_up:,.0f} rows/s with the actors' start-up", flush=True)

        for history in (256, 1024, 10_000):
            path = work / f"candidates-{history}.parquet"
            pq.write_table(candidate_rows(20_000, history, rng), path, row_group_size=8192)
            for bse in (True, False):
                per_row_us = 1e6 / plain_rows_per_s(files, path, args.batch, bse=bse)
                name = "bse" if bse else "e2e"
                figures[f"us_per_row_{name}_L{history}"] = round(per_row_us, 1)
            print(f"L = {history:>6,}: SDIM from BSE buckets {figures[f'us_per_row_bse_L{history}']:>7.1f} us/row, "
                  f"end to end {figures[f'us_per_row_e2e_L{history}']:>7.1f} us/row", flush=True)
        figures["bse_L10000_over_L256"] = round(figures["us_per_row_bse_L10000"] / figures["us_per_row_bse_L256"], 2)
        print(f"BSE time per row at L = 10,000 / at L = 256: {figures['bse_L10000_over_L256']}x (goal: flat)")
        if args.json:
            print(json.dumps(figures))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
