"""seqlake evaluate: measure a stage or a model against the generator's truth.

    seqlake evaluate denoise --date D [--json]
    seqlake evaluate model --version V --date D [--json]
    seqlake evaluate bse --date D [--version V] [--json]   a day's candidates scored from their BSE sums
                                                          vs end to end (default: the champion)
"""

from __future__ import annotations

import argparse

from jobs.cli import UsageError, iso_date, model_version, run_command, settings_flag
from pipelines.config import Settings
from pipelines.ctr.evaluation import model_quality
from pipelines.ctr.registry import champion_version
from pipelines.lakehouse.session import spark_session
from pipelines.stages.evaluate import bse_parity_of_day, denoise_quality, evaluation_lines

STAGES = ("denoise", "model", "bse")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="denoise: silver's noise flags vs the truth and fixed thresholds; "
                        "model: a registered model on a day's examples; bse: a day's candidates scored from their "
                        "bucket sums vs end to end")
    parser.add_argument("--date", type=iso_date, required=True)
    parser.add_argument("--version", type=model_version, help="model version in the registry (evaluate model)")
    settings_flag(parser, "--truth", "truth", metavar="URI", help="truth root (default: configured)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    if args.stage == "model":
        if not args.version:
            raise UsageError("evaluate model needs --version")
        figures = model_quality(settings, args.version, args.date)
    elif args.stage == "bse":
        version = args.version or champion_version(settings)
        if version is None:
            raise UsageError("evaluate bse: no champion yet; pass --version")
        figures = bse_parity_of_day(settings, args.date, version)
    else:
        figures = denoise_quality(spark_session(settings, "seqlake-evaluate"), settings, args.date)
    if not args.json:
        print("\n".join(evaluation_lines(args.stage, figures)))
    return figures


if __name__ == "__main__":
    run_command("evaluate")
