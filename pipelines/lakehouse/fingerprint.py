"""Row count and an order-independent content hash of every table of a lakehouse.

Two runs of the same nights are equal when their fingerprints are, whatever
the file layout, row order, engine or storage. Columns that record when or by
which run a row was written (ingest_ts, the quality log's run, time and
duration; the run ledger and the lease log entirely) are left out, and a
landing file is named relative to its landing root, so runs over two copies
of the same landing files (a folder and a bucket) compare equal.
"""

from __future__ import annotations

import hashlib
import json

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from pipelines.lakehouse.files import delta_rows, native_uri
from pipelines.lakehouse.tables import OPS_LEASES, OPS_RUNS, TABLES, table_uri

VOLATILE = {"ingest_ts", "run_id", "validated_at", "seconds"}
LANDING_FILE = "source_file"


def table_fingerprint(uri: str, landing: str | None = None) -> tuple[int, str]:
    """(rows, hash) of the Delta table at `uri`'s current version; with
    `landing`, the landing files it names are taken relative to that root."""
    table = delta_rows(DeltaTable(native_uri(uri)))
    table = table.drop_columns([c for c in table.column_names if c in VOLATILE])
    if landing and LANDING_FILE in table.column_names:
        root = _without_scheme(landing)
        relative = [None if v is None else _without_scheme(v).removeprefix(root) for v in table.column(LANDING_FILE).to_pylist()]
        table = table.set_column(table.column_names.index(LANDING_FILE), LANDING_FILE, pa.array(relative, pa.string()))
    names = sorted(table.column_names)
    rows = sorted(
        hashlib.sha256(json.dumps([row[n] for n in names], default=str).encode()).hexdigest()
        for row in table.select(names).to_pylist()
    )
    return len(rows), hashlib.sha256("".join(rows).encode()).hexdigest()[:16]


def _without_scheme(uri: str) -> str:
    """s3a://b/p, file:/p, file:///p and /p as b/p or p: the path alone."""
    return uri.split("://", 1)[-1].removeprefix("file:").lstrip("/")


def lakehouse_fingerprints(lakehouse: str, landing: str | None = None) -> dict[str, dict[str, object]]:
    """{table name: {"rows", "sha256"}} of every table the lakehouse has, run records aside."""
    figures = {}
    for name, spec in TABLES.items():
        if spec in (OPS_RUNS, OPS_LEASES):
            continue
        try:
            rows, digest = table_fingerprint(table_uri(lakehouse, spec), landing)
        except TableNotFoundError:
            continue
        figures[name] = {"rows": rows, "sha256": digest}
    return figures
