"""What the nights published, and the reads that see a table as it was published.

A run for the nights [start, end] rewrites more dates than those: the night
of D rewrites clean's look-back window D - L .. D, since late events of those
dates may have landed during D. The first finished run *for* a date (its
night, or the backfill that healed a night that failed) publishes it: its
ledger row names the Delta version each table had when the run ended, and
the instant the row was written is the instant the date became visible.
Later nights restate the date (the next incremental build starts from it),
but a read for an earlier time - the examples of D + 1, the candidates of
D + 1, the feature store at any instant - reads the publication: the table at
that version (time travel), from that instant on. Restatements correct
later nights, never an earlier read.

A BSE table holds each date under several embedding versions, one per run:
a date is published per version. Reads with delta-rs only (no Spark), so the
feature store and Feast's offline store share them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from pipelines.errors import MissingInputError
from pipelines.lakehouse.files import delta_dataset, delta_table
from pipelines.lakehouse.forget import forgotten_users, has_user_rows
from pipelines.lakehouse.ledger import ledger_rows, run_nights
from pipelines.lakehouse.tables import TableSpec


@dataclasses.dataclass(frozen=True)
class Publication:
    """Date `day` of a table, as the first finished run for it left the table."""

    day: dt.date
    table_version: int
    published_at: dt.datetime  # naive UTC, as the ledger stores it
    embedding_version: str | None = None
    # Every table the publishing run wrote -> its version then (a BSE read
    # takes the item signatures the same run left).
    run_versions: tuple[tuple[str, int], ...] = ()
    # Users forgotten since (pipelines.lakehouse.forget): their rows, which the
    # version may still hold until VACUUM removes it, are never read.
    excluded_users: frozenset[int] = frozenset()

    def version_of(self, table: TableSpec) -> int:
        return dict(self.run_versions)[table.name]


class UnpublishedDateError(MissingInputError):
    """A read needs a date that no finished run for it has published."""


def publications(lakehouse: str, table: TableSpec) -> list[Publication]:
    """The publication of each date (per embedding version, for a BSE table) of
    `table`, by date then instant: the first finished run for the date that
    wrote the table."""
    return publications_in(ledger_rows(lakehouse), table, forgotten_users(lakehouse))


def publications_in(runs: pa.Table, table: TableSpec, forgotten: frozenset[int] = frozenset()) -> list[Publication]:
    """publications(), from ledger rows (and forgotten users) already read."""
    excluded = forgotten if has_user_rows(table) else frozenset()
    first: dict[tuple[dt.date, str | None], Publication] = {}
    for row in sorted(runs.to_pylist(), key=lambda r: r["finished_at"]):
        version = dict(row["table_versions"]).get(table.name)
        if version is None:
            continue
        variant = row.get("embedding_version") if table.embedding_version_column else None
        for day in run_nights(row):
            first.setdefault((day, variant), Publication(
                day, version, row["finished_at"], variant, tuple(row["table_versions"]), excluded))
    return sorted(first.values(), key=lambda p: (p.day, p.published_at))


def publication_of(published: Iterable[Publication], day: dt.date, embedding_version: str | None = None) -> Publication | None:
    """The publication of `day` that a read uses: the one under `embedding_version`
    when given, else the date's first (what its night published)."""
    matching = [p for p in published if p.day == day and (embedding_version is None or p.embedding_version == embedding_version)]
    return min(matching, key=lambda p: p.published_at, default=None)


def first_per_date(published: Iterable[Publication]) -> list[Publication]:
    """Of each date, what its night published (its first publication, whatever the embedding version)."""
    first: dict[dt.date, Publication] = {}
    for p in sorted(published, key=lambda p: p.published_at):
        first.setdefault(p.day, p)
    return sorted(first.values(), key=lambda p: p.day)


def published_dates(
    lakehouse: str, table: TableSpec, days: Iterable[dt.date], embedding_version: str | None = None,
) -> list[Publication]:
    """The publications a read of `days` uses. A date before the table's first
    publication has none (no history yet); a later one that was never published
    is an error naming the night to run, unless an embedding version is asked
    for (its absence is the caller's to report)."""
    published = publications(lakehouse, table)
    chosen = {day: publication_of(published, day, embedding_version) for day in sorted(set(days))}
    gaps = [day for day, p in chosen.items() if p is None and published and day >= published[0].day]
    if gaps and embedding_version is None:
        raise UnpublishedDateError(
            f"{table.name} as of {', '.join(map(str, gaps))} was never published by a finished run for that date "
            f"(its night failed or never ran): run those nights first (`seqlake run --start {gaps[0]} --end {gaps[-1]}`, "
            "or the seqlake_backfill DAG)"
        )
    return [p for p in chosen.values() if p is not None]


def rows_filter(table: TableSpec, publication: Publication) -> ds.Expression:
    """The rows of `publication` among the table's rows at its version."""
    condition = pc.field(table.partition_column) == pa.scalar(publication.day, pa.date32())
    if table.embedding_version_column and publication.embedding_version is not None:
        condition &= pc.field(table.embedding_version_column) == publication.embedding_version
    if publication.excluded_users:
        condition &= ~pc.field("user_id").isin(pa.array(sorted(publication.excluded_users), pa.int64()))
    return condition


def published_dataset(lakehouse: str, table: TableSpec, publication: Publication) -> ds.Dataset:
    """The table as `publication` left it (delta-rs time travel), all its dates:
    filter with `rows_filter` for the publication's own."""
    return delta_dataset(delta_table(lakehouse, table, version=publication.table_version))
