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

from features.definitions import VIEWS, resolve
from features.store import column_name, latest_features, newest_snapshot
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
    at = args.as_of or dt.datetime.now(dt.UTC)
    row = latest_features(settings.lakehouse, keys, references, at).to_pylist()[0]
    # A view that answers nothing says why: nothing published before the
    # instant, or its newest snapshot past its TTL.
    unanswered = {
        view.name: newest_snapshot(settings.lakehouse, view, at)
        for view, names in resolve(references).items() if all(row[column_name(view, n)] is None for n in names)
    }
    if not args.json:
        for name, value in row.items():
            shown = value if not isinstance(value, list) or len(value) <= 8 else f"[{len(value)} values] {value[-3:]}"
            print(f"  {name:<36} {shown}")
        for name, snapshot in unanswered.items():
            print(f"  {name}: {why_null(snapshot)}")
    return {"as_of": at.isoformat(), "features": row, "unanswered": {n: {**(s or {}), "why": why_null(s)} for n, s in unanswered.items()}}


def why_null(snapshot: dict[str, object] | None) -> str:
    if snapshot is None:
        return "nothing published before this instant"
    if snapshot["in_reach"]:
        return f"no row for these keys in the snapshot as of {snapshot['date']} (published {snapshot['published_at']})"
    return (f"every snapshot is past its TTL: the newest, as of {snapshot['date']} (published {snapshot['published_at']}), "
            f"expired at {snapshot['expires_at']} (TTL {snapshot['ttl_hours']:g} h)")


if __name__ == "__main__":
    run_command("features")
