"""Row count and an order-independent content hash of every table of a lakehouse
(pipelines.lakehouse.fingerprint): two runs of the same nights are equal when
their fingerprints are.

    python infra/tools/lakehouse_fingerprint.py var/demo/lakehouse [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipelines.lakehouse.fingerprint import lakehouse_fingerprints  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lakehouse", help="a local folder or an object-store URI")
    parser.add_argument("--landing", help="name landing files relative to this root (to compare runs over two copies)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    lakehouse = args.lakehouse if "://" in args.lakehouse else str(Path(args.lakehouse).resolve())
    figures = lakehouse_fingerprints(lakehouse, args.landing)
    for name, figure in figures.items():
        print(f"{name:<24} {figure['rows']:>9,} rows  {figure['sha256']}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
