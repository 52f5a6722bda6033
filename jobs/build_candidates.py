"""seqlake candidates: gold/candidates of a day, the pairs `seqlake score`
scores, from what the night before published (pipelines.stages.candidates).

    seqlake candidates --date D [--embeddings VERSION]
"""

from __future__ import annotations

import argparse

from jobs.cli import iso_date, run_command
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.stages.candidates import build_candidates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=iso_date, required=True, help="the day whose candidates to build")
    parser.add_argument("--embeddings", help="embedding version of the bucket sums (default: what the champion scores from, else the bootstrap)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return build_candidates(spark_session(settings, "seqlake-candidates"), settings, args.date, args.embeddings)


if __name__ == "__main__":
    run_command("candidates")
