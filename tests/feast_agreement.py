"""Apply seqlake's Feast repo to a lakehouse and read features through Feast.

Runs inside the Feast virtualenv (not seqlake's: Feast pins pandas < 3 and
tenacity < 9), as a subprocess of seqlake's tests:

    .venv-feast/bin/python feast_agreement.py --lakehouse LAKEHOUSE --request REQUEST.json \
        [--repo features/feast_repo] [--feast-dir DIR]

REQUEST.json: {"rows": [{"user_id": 1, "item_id": 7, "event_timestamp": "2026-11-03T00:00:00"}, ...],
               "features": ["user_stats:user_ctr", ...]}
(timestamps ISO 8601, UTC when naive; "view" alone stands for all its features).

Does what `feast apply` does (registry and online store under --feast-dir, a
temporary folder by default), then `get_historical_features` with full
feature names ("<view>__<feature>", as seqlake names its columns), and prints
one JSON object on its last line of stdout: the registry's views, the rows in
request order, and timings. Everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# tests/feast_agreement.py -> features/feast_repo (or a feast_repo beside this script).
_HERE = Path(__file__).resolve().parent
DEFAULT_REPO = next((p for p in (_HERE / "feast_repo", _HERE.parent / "features" / "feast_repo") if p.is_dir()),
                    _HERE.parent / "features" / "feast_repo")


def _json_value(value):
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value


def _registry_views(store) -> dict:
    views = {}
    for view in sorted(store.list_feature_views(), key=lambda v: v.name):
        source = view.batch_source
        views[view.name] = {
            "entities": list(view.entities),
            "join_keys": [c.name for c in view.entity_columns],
            "features": [f.name for f in view.features],
            "ttl_s": view.ttl.total_seconds() if view.ttl else None,
            "valid_after_s": int(source.tags.get("seqlake.valid_after_s", "0")),
            "path": source.path,
            "timestamp_field": source.timestamp_field,
            "file_format": type(source.file_format).__name__,
            "owner": view.owner,
            "description": view.description,
        }
    return views


def _features(store, references: list[str]) -> list[str]:
    """seqlake's "view" (all features) shorthand -> Feast's "view:feature"."""
    out = []
    for reference in references:
        view, _, feature = reference.partition(":")
        if feature in ("", "*"):
            out.extend(f"{view}:{f.name}" for f in store.get_feature_view(view).features)
        else:
            out.append(reference)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lakehouse", required=True)
    parser.add_argument("--request", required=True, help="JSON file, or - for stdin")
    parser.add_argument("--repo", default=str(DEFAULT_REPO))
    parser.add_argument("--feast-dir", help="registry and online store folder (default: a temporary one)")
    args = parser.parse_args(argv)
    if args.request == "-":
        request = json.load(sys.stdin)
    else:
        with open(args.request) as file:
            request = json.load(file)

    with contextlib.ExitStack() as stack:
        feast_dir = args.feast_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="seqlake-feast-"))
        os.makedirs(feast_dir, exist_ok=True)
        os.environ["SEQLAKE_LAKEHOUSE"] = args.lakehouse
        os.environ["SEQLAKE_FEAST_DIR"] = os.path.abspath(feast_dir)
        repo = Path(args.repo).resolve()
        sys.path.insert(0, str(repo))  # the offline store class and the definitions import from the repo

        started = time.perf_counter()
        import pandas as pd
        from feast import FeatureStore
        from feast.repo_operations import apply_total

        imported = time.perf_counter()
        cwd = os.getcwd()
        store = FeatureStore(repo_path=str(repo))
        with contextlib.redirect_stdout(sys.stderr):  # what `feast apply` prints
            try:
                apply_total(store.config, repo, skip_source_validation=False)
            finally:
                os.chdir(cwd)
        store = FeatureStore(repo_path=str(repo))  # reload the registry just written
        applied = time.perf_counter()

        entity_df = pd.DataFrame(request["rows"])
        entity_df["event_timestamp"] = pd.to_datetime(entity_df["event_timestamp"], utc=True, format="ISO8601")
        for column in entity_df.columns:
            if column != "event_timestamp":
                entity_df[column] = entity_df[column].astype("int64")
        entity_df["_row"] = range(len(entity_df))
        job = store.get_historical_features(
            entity_df=entity_df, features=_features(store, request["features"]), full_feature_names=True
        )
        result = job.to_arrow()
        read = time.perf_counter()

        rows = {}
        for row in result.to_pylist():
            # Feast keys its join on (keys, timestamp): equal entity rows come back once per copy.
            rows.setdefault(row["_row"], row)
        ordered = []
        for i in range(len(entity_df)):
            row = rows[i]
            ordered.append({k: _json_value(v) for k, v in row.items() if k != "_row"})
        figures = {
            "registry": _registry_views(store),
            "rows": ordered,
            "timings_s": {"import": round(imported - started, 3), "apply": round(applied - imported, 3),
                          "historical": round(read - applied, 3)},
        }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
