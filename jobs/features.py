"""seqlake features: what the feature store holds, and point reads of it.

    seqlake features list
    seqlake features get --user U [--item I] [--as-of TS] [--features view:feature ...] [--json]

`get` reads with delta-rs (no Spark): each view's newest snapshot published
before --as-of (default now) and within its TTL, or null. Without --features,
every feature of the views the given keys address.
"""

from __future__ import annotations

import argparse
import datetime as dt

from features.definitions import VIEWS
from features.store import latest_features
from jobs.cli import UsageError, run_command
from pipelines.config import Settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("list", "get"))
    parser.add_argument("--user", type=int, help="user_id")
    parser.add_argument("--item", type=int, help="item_id")
    parser.add_argument("--as-of", type=instant, help="read as at this instant, ISO 8601 (UTC unless it says otherwise)")
    parser.add_argument("--features", nargs="+", metavar="VIEW:FEATURE", help="what to read (VIEW alone: all its features)")


def instant(text: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    if args.action == "list":
        views = [
            {"view": v.name, "entities": list(v.join_keys), "source": v.source.name, "event_time": v.event_time,
             "ttl_hours": v.ttl / dt.timedelta(hours=1), "owner": v.owner, "features": list(v.features)}
            for v in VIEWS.values()
        ]
        if not args.json:
            for v in views:
                print(f"  {v['view']:<14} by {'+'.join(v['entities']):<16} {v['source']:<22} ttl {v['ttl_hours']:>4.0f} h  "
                      f"{', '.join(v['features'])}")
        return {"views": views}
    keys = {k: [v] for k, v in (("user_id", args.user), ("item_id", args.item)) if v is not None}
    if not keys:
        raise UsageError("features get needs --user and/or --item")
    references = args.features or [v.name for v in VIEWS.values() if set(v.join_keys) <= set(keys)]
    row = latest_features(settings.lakehouse, keys, references, args.as_of).to_pylist()[0]
    if not args.json:
        for name, value in row.items():
            shown = value if not isinstance(value, list) or len(value) <= 8 else f"[{len(value)} values] {value[-3:]}"
            print(f"  {name:<36} {shown}")
    return {"as_of": (args.as_of or dt.datetime.now(dt.UTC)).isoformat(), "features": row}


if __name__ == "__main__":
    run_command("features")
