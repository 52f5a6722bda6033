"""seqlake train: a CTR model on Ray Train from gold/training_examples, logged and
registered in MLflow (pipelines.stages.train).

    seqlake train --start D1 --end D2 --model {sdim,din,long_attention,avg_pool} [--bse] [--epochs N]
    seqlake train --night D     the nightly model (night.model) on the window before D, when
                                night.train_cadence says D trains (exit 99 otherwise)

Also runs as `ray job submit -- python -m jobs.train ...`.
"""

from __future__ import annotations

import argparse

from jobs.cli import UsageError, iso_date, run_command, settings_flag
from pipelines.config import MODEL_NAMES, Settings
from pipelines.stages.train import train_model, train_night


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", type=iso_date, help="first date of training examples")
    parser.add_argument("--end", type=iso_date, help="last date (held out for validation when after --start)")
    parser.add_argument("--night", type=iso_date, help="train as the night of this date does (range and model from [night])")
    parser.add_argument("--model", choices=sorted(MODEL_NAMES))
    parser.add_argument("--bse", action="store_true", help="BSE mode (SDIM): the long side from the examples' bucket sums")
    settings_flag(parser, "--epochs", "train.epochs", int)
    settings_flag(parser, "--workers", "train.workers", int)


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    if args.night:
        if args.start or args.end:
            raise UsageError("give --night D, or --start D1 --end D2 --model M")
        return train_night(settings, args.night, args.model, args.bse)
    if not (args.start and args.end and args.model):
        raise UsageError("give --start D1 --end D2 --model M, or --night D")
    return train_model(settings, args.start, args.end, args.model, args.bse)


if __name__ == "__main__":
    run_command("train")
