"""Clean-job throughput against a Parquet read + write and a pandas reference.

For each size (events in one generated day): generate, ingest (not timed),
then time in the same run (a) the clean job (`clean_dates`: bronze -> silver and
its metrics, Delta), (b) a plain Spark Parquet read + write of the same bronze
rows, (c) bench/reference_clean_pandas.py, the same rules in one process
(reading and writing Parquet too). Also checks that Spark and pandas flag the
same clicks. Goals: clean at most 3x the Parquet baseline.

    python bench/clean.py [--sizes 1000000,10000000] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402
from deltalake import DeltaTable  # noqa: E402

from bench.reference_clean_pandas import cleaned_events  # noqa: E402
from pipelines.config import load_settings  # noqa: E402
from pipelines.lakehouse.session import spark_session  # noqa: E402
from pipelines.lakehouse.tables import BRONZE_EVENTS, SILVER_EVENTS, table_uri  # noqa: E402
from pipelines.stages.clean import clean_dates  # noqa: E402
from pipelines.stages.ingest import ingest_date  # noqa: E402
from pipelines.synth.generate import generate  # noqa: E402

EVENTS_PER_USER_DAY = 48  # what the generator produces at its defaults


def measure(spark, work: Path, events: int) -> dict[str, float]:
    settings = load_settings(overrides=[
        f"lakehouse={work / 'lakehouse'}", f"landing={work / 'landing'}", f"truth={work / 'truth'}",
        f"generator.users={max(events // EVENTS_PER_USER_DAY, 100)}", "generator.days=1",
    ])
    day = settings.generator.start_date
    generate(settings.generator, settings.landing, settings.truth)
    ingest_date(spark, settings, day)
    bronze_uri = table_uri(settings.lakehouse, BRONZE_EVENTS)

    started = time.perf_counter()
    figures = clean_dates(spark, settings, day)
    clean_s = time.perf_counter() - started

    started = time.perf_counter()
    spark.read.format("delta").load(bronze_uri).write.mode("overwrite").parquet(str(work / "parquet_out"))
    parquet_s = time.perf_counter() - started

    bronze_files = DeltaTable(bronze_uri).file_uris()
    started = time.perf_counter()
    bronze = pd.concat([pd.read_parquet(f) for f in bronze_files], ignore_index=True)
    bronze["landing_date"] = pd.Timestamp(day).date()
    reference = cleaned_events(bronze, settings.clean)
    reference.to_parquet(work / "pandas_out.parquet")
    pandas_s = time.perf_counter() - started

    silver = DeltaTable(table_uri(settings.lakehouse, SILVER_EVENTS)).to_pandas(columns=["event_id", "noise_reason"])
    both = silver.merge(reference[["event_id", "noise_reason"]], on="event_id", suffixes=("_spark", "_pandas"))
    agree = (both["noise_reason_spark"].fillna("") == both["noise_reason_pandas"].fillna("")).mean()
    del bronze, reference, silver, both
    return {
        "events": figures["silver_rows"],
        "clean_seconds": round(clean_s, 2),
        "clean_events_per_s": round(figures["silver_rows"] / clean_s),
        "parquet_read_write_seconds": round(parquet_s, 2),
        "pandas_seconds": round(pandas_s, 2),
        "clean_vs_parquet_ratio": round(clean_s / parquet_s, 2),
        "clean_vs_pandas_ratio": round(clean_s / pandas_s, 2),
        "flag_agreement_with_pandas": round(float(agree), 5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="events per run, comma-separated")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    spark = spark_session(load_settings(), "seqlake-bench-clean")
    results: dict[str, dict[str, float]] = {}
    for size in (int(s) for s in args.sizes.split(",")):
        work = Path(tempfile.mkdtemp(prefix="seqlake-bench-clean-"))
        try:
            results[f"{size // 1_000_000}M" if size >= 1_000_000 else str(size)] = r = measure(spark, work, size)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print(f"{r['events']:,} events: clean {r['clean_seconds']} s ({r['clean_events_per_s']:,} events/s); "
              f"parquet read+write {r['parquet_read_write_seconds']} s -> ratio {r['clean_vs_parquet_ratio']} (goal <= 3); "
              f"pandas {r['pandas_seconds']} s -> ratio {r['clean_vs_pandas_ratio']}; "
              f"flags agree with pandas on {r['flag_agreement_with_pandas']:.3%}", flush=True)
    spark.stop()
    if args.json:
        print(json.dumps({
            f"{key}_{name}": value for name, r in results.items() for key, value in r.items()
        }))


if __name__ == "__main__":
    main()
