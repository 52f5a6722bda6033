"""seqlake features: what the feature store holds, and point reads of it.

    seqlake features list
    seqlake features get --user U [--item I] [--as-of TS] [--features view:feature ...] [--json]

`get` reads with delta-rs (no Spark): each view's snapshot published last
before --as-of (default now) and not past its TTL, or null; a view that
answers nothing says why (nothing published yet, or its newest snapshot's
date, publication and expiry). Without --features, every feature of the
views the given keys address.
"""

from __future__ import annotations

import argparse
import datetime as dt

from features.definitions import VIEWS, views_for
from features.store import latest_features, unanswered_views, why_null
from jobs.cli import UsageError, iso_instant, run_command
from pipelines.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "get"))
    parser.add_argument("--user", type=int, help="user_id")
    parser.add_argument("--item", type=int, help="item_id")
    parser.add_argument("--as-of", type=iso_instant, help="read as at this instant, ISO 8601 (UTC unless it says otherwise)")
    parser.add_argument("--features", nargs="+", metavar="VIEW:FEATURE", help="what to read (VIEW alone: all its features)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    if args.action == "list":
        views = [v.summary() for v in VIEWS.values()]
        if not args.json:
            for v in views:
                print(f"  {v['view']:<14} by {'+'.join(v['entities']):<16} {v['source']:<22} ttl {v['ttl_hours']:>4.0f} h  "
                      f"{', '.join(v['features'])}")
        return {"views": views}
    keys = {k: [v] for k, v in (("user_id", args.user), ("item_id", args.item)) if v is not None}
    if not keys:
        raise UsageError("features get needs --user and/or --item")
    references = args.features or views_for(keys)
    at = args.as_of or dt.datetime.now(dt.UTC)
    row = latest_features(settings.lakehouse, keys, references, at).to_pylist()[0]
    unanswered = unanswered_views(settings.lakehouse, row, references, at)
    if not args.json:
        for name, value in row.items():
            shown = value if not isinstance(value, list) or len(value) <= 8 else f"[{len(value)} values] {value[-3:]}"
            print(f"  {name:<36} {shown}")
        for name, snapshot in unanswered.items():
            print(f"  {name}: {why_null(snapshot)}")
    return {"as_of": at.isoformat(), "features": row, "unanswered": {n: {**(s or {}), "why": why_null(s)} for n, s in unanswered.items()}}


if __name__ == "__main__":
    run_command("features")
