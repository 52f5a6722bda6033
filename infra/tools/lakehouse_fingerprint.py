"""Row count and an order-independent content hash of every table of a lakehouse.

Two runs of the same night are equal when their fingerprints are, whatever
the file layout or row order. Columns that record when or by which run a row
was written (ingest_ts, the run ledger, the lease log) are left out.

    python infra/tools/lakehouse_fingerprint.py var/demo/lakehouse [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from deltalake import DeltaTable  # noqa: E402

from pipelines.lakehouse.tables import OPS_LEASES, OPS_RUNS, TABLES, table_uri  # noqa: E402

VOLATILE = {"ingest_ts"}


def fingerprint(uri: str) -> tuple[int, str]:
    table = DeltaTable(uri).to_pyarrow_table()
    table = table.drop_columns([c for c in table.column_names if c in VOLATILE])
    names = sorted(table.column_names)
    rows = sorted(
        hashlib.sha256(json.dumps([row[n] for n in names], default=str).encode()).hexdigest()
        for row in table.select(names).to_pylist()
    )
    return len(rows), hashlib.sha256("".join(rows).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lakehouse")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {}
    for name, spec in TABLES.items():
        uri = table_uri(str(Path(args.lakehouse).resolve()), spec)
        if spec in (OPS_RUNS, OPS_LEASES) or not Path(uri).is_dir():
            continue
        rows, digest = fingerprint(uri)
        figures[name] = {"rows": rows, "sha256": digest}
        print(f"{name:<24} {rows:>9,} rows  {digest}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
