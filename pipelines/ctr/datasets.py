"""Where training and evaluation read their rows: gold/training_examples partitions,
streamed (Ray Data over the files of the dates' Delta snapshot) or in Arrow
batches for one process, and the vocabularies from the statistics tables."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray.data

from pipelines.bse.projection import ProjectionMismatchError
from pipelines.ctr.batches import EXAMPLE_COLUMNS, Vocabulary
from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import delta_rows, delta_table, parquet_dataset
from pipelines.lakehouse.tables import (
    GOLD_ITEM_STATS,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_STATS,
)


@dataclasses.dataclass(frozen=True)
class ExampleFiles:
    """The Parquet files of some dates of gold/training_examples at one table version."""

    uris: list[str]
    version: int
    first: dt.date
    last: dt.date


def example_files(lakehouse: str, first: dt.date, last: dt.date) -> ExampleFiles:
    table = delta_table(lakehouse, GOLD_TRAINING_EXAMPLES)
    uris = table.file_uris(file_pruning_predicate=f"event_date >= '{first}' AND event_date <= '{last}'")
    if not uris:
        raise MissingInputError(f"no training examples from {first} to {last}: run `seqlake examples` first")
    return ExampleFiles(uris, table.version(), first, last)


def arrow_bytes(uris: list[str], columns: list[str]) -> int:
    """The uncompressed size of `columns` in the Parquet files `uris`, from their
    footers: about what reading them holds in memory."""
    wanted, total = set(columns), 0
    for fragment in parquet_dataset(uris).get_fragments():
        meta = fragment.metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            total += sum(group.column(c).total_uncompressed_size for c in range(group.num_columns)
                         if group.column(c).path_in_schema.split(".")[0] in wanted)
    return total


def held_in_object_store(sized: list[tuple[ray.data.Dataset, int]], budget: float) -> list[ray.data.Dataset]:
    """Each (dataset, its size in bytes) materialized in Ray's object store while
    the sizes so far fit in `budget`, in the order given (the most read first),
    streamed from its files otherwise. A dataset read every epoch is then read
    from its files once: streamed, its reads run beside the training on the same
    cores (bench/ray_train_overhead.py on 2 cores: Ray Train at 50-62% of a plain
    loop streamed, 80-87% held)."""
    held, used = [], 0
    for dataset, size in sized:
        if used + size <= budget:
            used += size
            dataset = dataset.materialize()
        held.append(dataset)
    return held


def bse_sums_version(lakehouse: str, files: ExampleFiles, projection_sha256: str) -> str:
    """The one embedding version whose BSE bucket sums every example of `files`
    carries: a BSE-mode model learns from sums of one embedding and scores
    from sums of that one. A window that mixes versions, has rows without
    sums, or sums from another projection is refused."""
    table = delta_table(lakehouse, GOLD_TRAINING_EXAMPLES, version=files.version)
    found = delta_rows(
        table,
        columns=["event_date", "bse_version", "bse_projection_sha256"],
        filters=[("event_date", ">=", files.first), ("event_date", "<=", files.last)],
    )
    per_date = found.group_by(["event_date", "bse_version", "bse_projection_sha256"]).aggregate([]).to_pylist()
    versions = {row["bse_version"] for row in per_date}
    if None in versions or len(versions) != 1:
        by_date = sorted((str(r["event_date"]), r["bse_version"]) for r in per_date)
        raise MissingInputError(
            f"examples {files.first}..{files.last} carry BSE sums under {', '.join(f'{d}: {v}' for d, v in by_date)}: "
            "a BSE-mode model trains on sums of one embedding version (set examples.bse_long_side and train on "
            "dates the same embeddings hashed), or train SDIM end to end"
        )
    hashes = {row["bse_projection_sha256"] for row in per_date}
    if hashes != {projection_sha256}:
        raise ProjectionMismatchError(
            f"examples {files.first}..{files.last}: BSE sums built with projection hash {', '.join(h[:12] for h in sorted(hashes))}, "
            f"not with {projection_sha256[:12]}: rebuild them with this projection"
        )
    return versions.pop()


def training_split(first: dt.date, last: dt.date) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date] | None]:
    """(training dates, validation dates): the last date is held out when there
    are several; with one date, validation is a share of users (None here)."""
    if last > first:
        return (first, last - dt.timedelta(days=1)), (last, last)
    return (first, last), None


def in_validation(users: np.ndarray, share: float) -> np.ndarray:
    """A fixed, hash-based share of users held out for validation."""
    mixed = (np.asarray(users, dtype=np.uint64) * np.uint64(2654435761)) % np.uint64(1 << 32)
    return mixed.astype(np.float64) / float(1 << 32) < share


def user_split(table: pa.Table, share: float, validation: bool) -> pa.Table:
    keep = in_validation(table.column("user_id").to_numpy(zero_copy_only=False), share)
    return table.filter(pa.array(keep if validation else ~keep))


def vocabulary(lakehouse: str, as_of: dt.date, min_item_impressions: int = 0) -> Vocabulary:
    """Items, categories and users with activity in the statistics as of `as_of`;
    an item shown fewer than `min_item_impressions` times is left out (it shares
    the unknown embedding: a vector learnt from a handful of rows memorizes them)."""
    def read(table, columns):
        delta = delta_table(lakehouse, table)
        return delta_rows(delta, columns=columns, filters=[("as_of_date", "=", as_of)])

    items = read(GOLD_ITEM_STATS, ["item_id", "category_id", "item_impressions"])
    users = read(GOLD_USER_STATS, ["user_id"])
    if items.num_rows == 0:
        raise MissingInputError(f"no item statistics as of {as_of}: run `seqlake sequences` first")
    categories = pc.drop_null(items.column("category_id")).to_numpy(zero_copy_only=False)
    seen = items.filter(pc.greater_equal(items.column("item_impressions"), min_item_impressions))
    return Vocabulary.of(
        seen.column("item_id").to_numpy(zero_copy_only=False), categories, users.column("user_id").to_numpy(zero_copy_only=False)
    )


def example_batches(files: ExampleFiles, batch_size: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
    """The rows of `files`, batch by batch, in one process (evaluation, scoring tests)."""
    dataset = parquet_dataset(files.uris)
    yield from dataset.to_batches(columns=columns or EXAMPLE_COLUMNS, batch_size=batch_size)
