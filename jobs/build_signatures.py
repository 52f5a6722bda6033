"""seqlake signatures: BSE signatures of items and bucket sums of users as of a
night's dates (pipelines.stages.signatures).

    seqlake signatures --date D [--embeddings VERSION] [--full-rebuild]
    seqlake signatures --start D1 --end D2 [--embeddings VERSION]
"""

from __future__ import annotations

import argparse

from jobs.cli import add_night_arguments, nights, run_command
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.stages.signatures import build_signatures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)
    parser.add_argument("--embeddings", help="item embedding version (default: the champion model's, else bse.bootstrap_version)")
    parser.add_argument("--full-rebuild", action="store_true",
                        help="hash the whole long sides instead of updating the bucket sums of the day before")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return build_signatures(spark_session(settings, "seqlake-signatures"), settings, *nights(args), version=args.embeddings,
                            full_rebuild=args.full_rebuild)


if __name__ == "__main__":
    run_command("signatures")
