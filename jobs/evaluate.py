"""seqlake evaluate: measure a stage against the generator's truth.

    seqlake evaluate denoise --date D [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.cli import iso_date, run_command, settings_flag
from pipelines.clickstream.denoise_quality import confusion_counts, flag_quality
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import SILVER_EVENTS
from pipelines.lakehouse.writes import read_date_partitions
from pipelines.synth.truth import truth_clicks

STAGES = ("denoise",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="denoise: silver's noise flags vs the truth and fixed thresholds")
    parser.add_argument("--date", type=iso_date, required=True)
    settings_flag(parser, "--truth", "truth", metavar="URI", help="truth root (default: configured)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
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
