"""seqlake score: offline CTR scores of a day's candidates on Ray Data -> scores/ctr
(pipelines.stages.score).

    seqlake score --date D [--version V]     V defaults to the champion
"""

from __future__ import annotations

import argparse

from jobs.cli import iso_date, run_command
from pipelines.config import Settings
from pipelines.stages.score import score_day


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=iso_date, required=True, help="the day whose candidates to score")
    parser.add_argument("--version", help="registered model version (default: the champion)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return score_day(settings, args.date, args.version)


if __name__ == "__main__":
    run_command("score")
