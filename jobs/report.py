"""seqlake report: the operators' morning report of a night, one self-contained
HTML file (pipelines.stages.report).

    seqlake report --date D [--versions V ...] [--reports URI] [--json]
"""

from __future__ import annotations

import argparse

from jobs.cli import iso_date, run_command, settings_flag
from pipelines.config import Settings
from pipelines.stages.report import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=iso_date, required=True, help="the night to report, YYYY-MM-DD")
    parser.add_argument("--versions", nargs="+", metavar="V",
                        help="model versions to show (default: the one the night trained, else the newest "
                             "trained before --date; and the champion)")
    settings_flag(parser, "--reports", "reports", metavar="URI", help="reports root (default: configured)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return write_report(settings, args.date, args.versions or (), log=(lambda line: None) if args.json else print)



if __name__ == "__main__":
    run_command("report")
