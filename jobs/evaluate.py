"""seqlake evaluate: measure a stage or a model against the generator's truth.

    seqlake evaluate denoise --date D [--json]
    seqlake evaluate denoise --date D | --start D1 --end D2 --proxy [--source S] [--json]
                                            the flags against what users did afterwards
    seqlake evaluate model --version V --date D [--json]
    seqlake evaluate bse --date D [--version V] [--json]   a day's candidates scored from their BSE sums
                                                          vs end to end (default: the champion)
"""

from __future__ import annotations

import argparse

from jobs.cli import (
    UsageError,
    add_night_arguments,
    model_version,
    nights,
    run_command,
    settings_flag,
)
from pipelines.config import Settings
from pipelines.ctr.evaluation import model_quality
from pipelines.ctr.registry import champion_version
from pipelines.lakehouse.session import spark_session
from pipelines.stages.evaluate import (
    bse_parity_of_day,
    denoise_proxy,
    denoise_quality,
    evaluation_lines,
)

STAGES = ("denoise", "model", "bse")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="denoise: silver's noise flags vs the truth and fixed thresholds; "
                        "model: a registered model on a day's examples; bse: a day's candidates scored from their "
                        "bucket sums vs end to end")
    add_night_arguments(parser)
    parser.add_argument("--version", type=model_version, help="model version in the registry (evaluate model)")
    parser.add_argument("--proxy", action="store_true", help="evaluate denoise: against later evidence of interest "
                        "(an action on the item, a return to it), for sources without a truth")
    parser.add_argument("--source", help="evaluate denoise --proxy: one source's clicks (default: every source)")
    settings_flag(parser, "--truth", "truth", metavar="URI", help="truth root (default: configured)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    first, last = nights(args)
    if first != last and not (args.stage == "denoise" and args.proxy):
        raise UsageError("a range (--start, --end) is for evaluate denoise --proxy; give --date D")
    args.date = first
    if args.stage == "model":
        if not args.version:
            raise UsageError("evaluate model needs --version")
        figures = model_quality(settings, args.version, args.date)
    elif args.stage == "bse":
        version = args.version or champion_version(settings)
        if version is None:
            raise UsageError("evaluate bse: no champion yet; pass --version")
        figures = bse_parity_of_day(settings, args.date, version)
    elif args.proxy:
        figures = denoise_proxy(spark_session(settings, "seqlake-evaluate"), settings, first, last, args.source)
    else:
        figures = denoise_quality(spark_session(settings, "seqlake-evaluate"), settings, args.date)
    if not args.json:
        print("\n".join(evaluation_lines(args.stage, figures)))
    return figures


if __name__ == "__main__":
    run_command("evaluate")
