"""seqlake evaluate: measure a stage against the generator's truth.

    seqlake evaluate denoise --date D [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs.runtime import add_settings_arguments, iso_date, parse, settings_from
from pipelines.clickstream.denoise_quality import confusion_counts, flag_quality
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import SILVER_EVENTS
from pipelines.lakehouse.writes import read_date_partitions


def denoise_quality(spark: SparkSession, settings: Settings, day: dt.date) -> dict[str, object]:
    flags = (
        read_date_partitions(spark, settings.lakehouse, SILVER_EVENTS, day)
        .where(F.col("event_type") == "click")
        .select("event_id", "noise_reason", "dwell_ms")
    )
    truth = spark.read.parquet(f"{settings.truth}/events/event_date={day}").where(
        F.col("event_type") == "click"
    ).select("event_id", "label")
    return {"date": day.isoformat(), **flag_quality(confusion_counts(flags, truth))}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Measure a stage against the generator's truth.")
    stages = parser.add_subparsers(dest="stage", required=True)
    denoise = stages.add_parser("denoise", help="noise flags of silver/events vs truth, and a 5 s baseline")
    add_settings_arguments(denoise)
    denoise.add_argument("--date", type=iso_date, required=True)
    denoise.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    denoise.add_argument("--truth", help="truth root URI (default: configured truth)")
    denoise.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parse(parser, argv)
    settings = settings_from(args, lakehouse=args.lakehouse, truth=args.truth)
    spark = spark_session(settings.spark, "seqlake-evaluate")
    figures = denoise_quality(spark, settings, args.date)
    if args.json:
        print(json.dumps(figures))
        return
    o, b, h = figures["overall"], figures["baseline_fixed_5s"], figures["hindsight_fixed"]
    print(f"denoise {figures['date']}: {figures['clicks']} clicks; flags precision={o['precision']} "
          f"recall={o['recall']} f1={o['f1']}; baseline (dwell < 5 s) precision={b['precision']} "
          f"recall={b['recall']} f1={b['f1']}; best fixed threshold with hindsight ({h['threshold_s']} s) "
          f"precision={h['precision']} recall={h['recall']} f1={h['f1']}")
    for kind, s in figures["per_kind"].items():
        print(f"  {kind:<12} precision={s['precision']} recall={s['recall']} f1={s['f1']}")


if __name__ == "__main__":
    main()
