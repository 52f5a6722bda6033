"""seqlake models: the registered CTR models.

    seqlake models list
    seqlake models promote VERSION              set the champion alias, export its item embeddings
    seqlake models gate --version V --date D    promote V only if it beats the champion on day D by the margin
    seqlake models gate --date D                the same for the newest version the night of D trained
                                                (exit 99 when that night trained none)
    seqlake models export [--version V]         write V's (default: the champion's) item embeddings to
                                                gold/item_embeddings (exit 99 when there is no champion)
"""

from __future__ import annotations

import argparse

from jobs.cli import UsageError, iso_date, model_version, run_command
from pipelines.config import Settings
from pipelines.ctr.registry import model_versions
from pipelines.stages.export import export_champion, export_embeddings, promote_and_export
from pipelines.stages.gate import gate, trained_for_night

ACTIONS = ("list", "promote", "gate", "export")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=ACTIONS)
    parser.add_argument("target", nargs="?", type=model_version, help="the version to promote")
    parser.add_argument("--version", type=model_version, help="the candidate version (gate, export)")
    parser.add_argument("--date", type=iso_date, help="the held-out day the gate compares on")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    if args.action == "list":
        versions = model_versions(settings)
        if not args.json:
            for v in versions:
                print(f"  v{v.version:<4} {v.tags.get('model', ''):<16} {v.data_range or '':<24} {', '.join(v.aliases)}")
        return {"versions": [v.as_json() for v in versions]}
    if args.action == "promote":
        if not args.target:
            raise UsageError("models promote needs a version")
        return promote_and_export(settings, args.target)
    if args.action == "export":
        return export_embeddings(settings, args.version) if args.version else export_champion(settings)
    if not args.date:
        raise UsageError("models gate needs --date")
    return gate(settings, args.version or trained_for_night(settings, args.date), args.date)



if __name__ == "__main__":
    run_command("models")
