"""Which run published a date, and at which table version: the first finished
run for the date; later runs that rewrite it only restate it. Hand-built
ledgers, no Spark."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from pipelines.lakehouse.publications import (
    UnpublishedDateError,
    first_per_date,
    publications,
    published_dataset,
    published_dates,
    rows_filter,
)
from pipelines.lakehouse.tables import GOLD_USER_BSE, GOLD_USER_STATS
from tests.published import publish, write_rows

D = dt.date


def _stats(day: dt.date, ctr: float) -> dict:
    return {"user_id": pa.array([1], pa.int64()), "user_ctr": [ctr], "as_of_date": pa.array([day], pa.date32())}


def test_the_first_run_for_a_date_publishes_it_and_later_rewrites_only_restate_it(tmp_path):
    lakehouse = str(tmp_path)
    write_rows(lakehouse, GOLD_USER_STATS, _stats(D(2026, 11, 1), 0.1))  # version 0
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 1)], "2026-11-02T02:00:00")
    write_rows(lakehouse, GOLD_USER_STATS, _stats(D(2026, 11, 1), 0.5), replacing=D(2026, 11, 1))  # version 1
    write_rows(lakehouse, GOLD_USER_STATS, _stats(D(2026, 11, 2), 0.2))  # version 2
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 2)], "2026-11-03T02:00:00", restated=[D(2026, 11, 1)])
    # A rerun of the night of Nov 1 after that: a restatement too, not a second publication.
    publish(lakehouse, GOLD_USER_STATS, [D(2026, 11, 1)], "2026-11-03T09:00:00")

    found = [(p.day, p.table_version, p.published_at) for p in publications(lakehouse, GOLD_USER_STATS)]
    assert found == [(D(2026, 11, 1), 0, dt.datetime(2026, 11, 2, 2)), (D(2026, 11, 2), 2, dt.datetime(2026, 11, 3, 2))]
    first, = published_dates(lakehouse, GOLD_USER_STATS, [D(2026, 11, 1)])
    as_published = published_dataset(lakehouse, GOLD_USER_STATS, first).to_table(filter=rows_filter(GOLD_USER_STATS, first))
    assert as_published.column("user_ctr").to_pylist() == [0.1]  # not the restated 0.5
    # A date before the first publication has no history yet; none after it is missing silently.
    assert published_dates(lakehouse, GOLD_USER_STATS, [D(2026, 10, 31)]) == []
    with pytest.raises(UnpublishedDateError, match=r"gold/user_stats as of 2026-11-03 was never published .*"
                                                   r"seqlake run --start 2026-11-03 --end 2026-11-03"):
        published_dates(lakehouse, GOLD_USER_STATS, [D(2026, 11, 2), D(2026, 11, 3)])


def test_bse_dates_are_published_per_embedding_version(tmp_path):
    lakehouse = str(tmp_path)
    rows = {"user_id": pa.array([1], pa.int64()), "as_of_date": pa.array([D(2026, 11, 1)], pa.date32()), "version": ["v1"]}
    write_rows(lakehouse, GOLD_USER_BSE, rows)
    publish(lakehouse, GOLD_USER_BSE, [D(2026, 11, 1)], "2026-11-02T02:00:00", embedding_version="v1")
    write_rows(lakehouse, GOLD_USER_BSE, {**rows, "version": ["v2"]})
    publish(lakehouse, GOLD_USER_BSE, [D(2026, 11, 1)], "2026-11-02T11:00:00", embedding_version="v2")
    published = publications(lakehouse, GOLD_USER_BSE)
    assert [(p.embedding_version, p.table_version) for p in published] == [("v1", 0), ("v2", 1)]
    # What the night published (the first), or the one under a version asked for; none for an unknown one.
    assert [p.embedding_version for p in first_per_date(published)] == ["v1"]
    v2, = published_dates(lakehouse, GOLD_USER_BSE, [D(2026, 11, 1)], embedding_version="v2")
    assert published_dataset(lakehouse, GOLD_USER_BSE, v2).to_table(filter=rows_filter(GOLD_USER_BSE, v2)).column(
        "version").to_pylist() == ["v2"]
    assert published_dates(lakehouse, GOLD_USER_BSE, [D(2026, 11, 1)], embedding_version="v3") == []
