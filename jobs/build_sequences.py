"""seqlake sequences: silver/events -> gold/user_sequences, gold/user_stats and
gold/item_stats as of the dates that clean rewrote (pipelines.stages.sequences).

    seqlake sequences --date D [--full-rebuild]       one night: as of D - lookback .. D
    seqlake sequences --start D1 --end D2             a range of nights in one pass
"""

from __future__ import annotations

import argparse

from jobs.cli import add_night_arguments, nights, run_command
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.stages.sequences import build_sequences


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)
    parser.add_argument("--full-rebuild", action="store_true", help="rebuild from all of silver up to the last date")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return build_sequences(spark_session(settings, "seqlake-sequences"), settings, *nights(args), args.full_rebuild)


if __name__ == "__main__":
    run_command("sequences")
