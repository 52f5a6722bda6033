"""seqlake examples: gold/training_examples of the dates a night (or a range)
rewrites, with features as published the day before (pipelines.stages.examples).

    seqlake examples --date D                one night: the examples of D - lookback .. D
    seqlake examples --start D1 --end D2     a range of nights in one pass
"""

from __future__ import annotations

import argparse

from jobs.cli import add_night_arguments, nights, run_command
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.stages.examples import build_examples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return build_examples(spark_session(settings, "seqlake-examples"), settings, *nights(args))


if __name__ == "__main__":
    run_command("examples")
