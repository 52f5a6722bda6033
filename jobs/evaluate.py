"""seqlake evaluate: measure a stage or a model against the generator's truth.

    seqlake evaluate denoise --date D [--json]
    seqlake evaluate model --version V --date D [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.cli import UsageError, iso_date, run_command, settings_flag
from pipelines.clickstream.denoise_quality import confusion_counts, flag_quality
from pipelines.config import Settings
from pipelines.ctr.evaluation import model_quality
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import SILVER_EVENTS
from pipelines.lakehouse.writes import read_date_partitions
from pipelines.synth.truth import truth_clicks

STAGES = ("denoise", "model")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="denoise: silver's noise flags vs the truth and fixed thresholds; "
                        "model: a registered model on a day's examples")
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


def denoise_quality(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    flags = (
        read_date_partitions(spark, settings.lakehouse, SILVER_EVENTS, day)
        .where(F.col("event_type") == "click")
        .select("event_id", "noise_reason", "dwell_ms")
    )
    return {"date": day.isoformat(), **flag_quality(confusion_counts(flags, truth_clicks(spark, settings.truth, day)))}


if __name__ == "__main__":
    run_command("evaluate")
