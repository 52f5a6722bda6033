"""seqlake evaluate: measure a stage or a model against the generator's truth.

    seqlake evaluate denoise --date D [--json]
    seqlake evaluate model --version V --date D [--json]
    seqlake evaluate bse --date D [--version V] [--json]   a day's candidates scored from their BSE sums
                                                          vs end to end (default: the champion)
"""

from __future__ import annotations

import argparse

from jobs.cli import UsageError, iso_date, run_command, settings_flag
from pipelines.config import Settings
from pipelines.ctr.evaluation import model_quality
from pipelines.ctr.registry import champion_version
from pipelines.lakehouse.session import spark_session
from pipelines.stages.evaluate import bse_parity_of_day, denoise_quality

STAGES = ("denoise", "model", "bse")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="denoise: silver's noise flags vs the truth and fixed thresholds; "
                        "model: a registered model on a day's examples; bse: a day's candidates scored from their "
                        "bucket sums vs end to end")
    parser.add_argument("--date", type=iso_date, required=True)
    parser.add_argument("--version", help="model version in the registry (evaluate model)")
    settings_flag(parser, "--truth", "truth", metavar="URI", help="truth root (default: configured)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    if args.stage == "model":
        if not args.version:
            raise UsageError("evaluate model needs --version")
        figures = model_quality(settings, args.version, args.date)
        if not args.json:
            print(f"model {figures['version']} ({figures['model']}) on {figures['date']}: AUC {figures['auc']}, "
                  f"GAUC {figures['gauc']}, logloss {figures['logloss']}, oracle AUC {figures['oracle_auc']}, "
                  f"model / oracle {figures['model_over_oracle']}")
        return figures
    if args.stage == "bse":
        version = args.version or champion_version(settings)
        if version is None:
            raise UsageError("evaluate bse: no champion yet; pass --version")
        figures = bse_parity_of_day(settings, args.date, version)
        if not args.json:
            print(f"BSE vs end to end on the candidates of {figures['date']} (v{figures['version']}, sums under "
                  f"{figures['embedding_version']}): max |diff| {figures['max_abs_diff']:.2e} over {figures['candidates']:,} rows; "
                  f"{figures['users_past_long_side']} users past the long side of {figures['long_side']}: "
                  f"max |diff| {figures['max_abs_diff_past_long_side']}")
        return figures
    figures = denoise_quality(spark_session(settings.spark, "seqlake-evaluate"), settings, args.date)
    if not args.json:
        o, b, h = figures["overall"], figures["baseline_fixed_5s"], figures["hindsight_fixed"]
        print(f"denoise {figures['date']}: {figures['clicks']} clicks")
        print(f"  flags                         precision={o['precision']} recall={o['recall']} f1={o['f1']}")
        print(f"  dwell < 5 s                   precision={b['precision']} recall={b['recall']} f1={b['f1']}")
        print(f"  dwell < {h['threshold_s']} s (hindsight best) precision={h['precision']} recall={h['recall']} f1={h['f1']}")
        for kind, s in figures["per_kind"].items():
            print(f"  {kind:<12} precision={s['precision']} recall={s['recall']} f1={s['f1']}")
    return figures



if __name__ == "__main__":
    run_command("evaluate")
