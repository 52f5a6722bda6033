"""seqlake clean: bronze/events -> silver/events (dedup, sessions, dwell, noise flags).

    seqlake clean --date D                  one night: rewrites D - lookback .. D
    seqlake clean --start D1 --end D2       a backfill in one pass: D1 - lookback .. D2

Both write the same partitions the nightly runs of those dates would
(pipelines.stages.clean).
"""

from __future__ import annotations

import argparse

from jobs.cli import add_night_arguments, nights, run_command
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.stages.clean import clean_dates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return clean_dates(spark_session(settings, "seqlake-clean"), settings, *nights(args))


if __name__ == "__main__":
    run_command("clean")
