"""Ingest and generator throughput, measured against a plain Spark Parquet read + write.

Generates --days days (about 50 events per user a day) and ingests all but
the last, as the nights before did; then times, in the same Spark session and
alternating, (a) the ingest job on the last day's landing folder (its late
events compared with the days landed before) and (b) a plain Parquet read +
write of the same records; each is run --repeats times and the best time
counts. Goals: ingest at most 2x the Parquet baseline, and the generator at
1M events per minute or better on 2 cores.

    python bench/ingest.py [--users 20000] [--days 2] [--json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.clickstream.landing import landing_folder  # noqa: E402
from pipelines.config import load_settings  # noqa: E402
from pipelines.lakehouse.session import spark_session  # noqa: E402
from pipelines.stages.ingest import ingest_date
from pipelines.synth.generate import generate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=2, help="days generated; the last is timed (1: no day landed before it)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="seqlake-bench-ingest-"))
    try:
        settings = load_settings(overrides=[
            f"lakehouse={work / 'lakehouse'}", f"landing={work / 'landing'}", f"truth={work / 'truth'}",
            f"generator.users={args.users}", f"generator.days={args.days}",
        ])
        day: dt.date = settings.generator.start_date + dt.timedelta(days=args.days - 1)
        generated = generate(settings.generator, settings.landing, settings.truth)
        print(f"generator: {generated['events']:,} events in {generated['seconds']} s "
              f"= {generated['events_per_minute']:,} events/min ({settings.generator.workers} workers)")

        spark = spark_session(settings, "seqlake-bench-ingest")
        for earlier in range(args.days - 1):
            ingest_date(spark, settings, settings.generator.start_date + dt.timedelta(days=earlier))
        parquet_copy = str(work / "as_parquet")
        spark.read.json(landing_folder(settings.landing, day)).write.parquet(parquet_copy)

        def parquet_read_write() -> float:
            started = time.perf_counter()
            spark.read.parquet(parquet_copy).write.mode("overwrite").parquet(str(work / "parquet_out"))
            return time.perf_counter() - started

        def ingest() -> tuple[float, int]:
            started = time.perf_counter()
            figures = ingest_date(spark, settings, day)
            return time.perf_counter() - started, figures["landed"]

        baseline_s, ingest_s, landed = float("inf"), float("inf"), 0
        for _ in range(args.repeats):
            baseline_s = min(baseline_s, parquet_read_write())
            seconds, landed = ingest()
            ingest_s = min(ingest_s, seconds)
        spark.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    figures = {
        "events": generated["events"],
        "days_landed_before": args.days - 1,
        "landed_records": landed,
        "generator_events_per_minute": generated["events_per_minute"],
        "ingest_seconds": round(ingest_s, 2),
        "ingest_records_per_s": round(landed / ingest_s),
        "parquet_read_write_seconds": round(baseline_s, 2),
        "ingest_vs_parquet_ratio": round(ingest_s / baseline_s, 2),
    }
    print(f"ingest: {landed:,} records in {ingest_s:.2f} s = {figures['ingest_records_per_s']:,} records/s")
    print(f"plain Parquet read + write of the same records: {baseline_s:.2f} s")
    print(f"ingest / parquet ratio: {figures['ingest_vs_parquet_ratio']} (goal <= 2)")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
