"""seqlake import: a public dataset's files -> bronze, through the same rules as ingest.

    seqlake import --format {ebnerd,taobao,kuairand,mind} --input PATH [--source NAME] [--lakehouse URI]

Each record lands on the date of its own event time (a backfill). The import
is a source of its own (--source, default the format's name): rerunning it
replaces what it wrote before and nothing else, and it refuses to write into
landing dates that hold rows of another source.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):  # spark-submit runs this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyspark.sql import SparkSession

from jobs.runtime import job_parser, parse, print_summary, run_job, settings_from
from pipelines.clickstream.publish import PublishScope, import_landing_dates, publish_landing_records
from pipelines.clickstream.schema import LANDING_SOURCE
from pipelines.config import Settings
from pipelines.lakehouse.ledger import now_utc
from pipelines.lakehouse.session import spark_session

FORMATS = ("ebnerd", "taobao", "kuairand", "mind")


def import_source(
    spark: SparkSession, settings: Settings, source_format: str, path: str, source: str | None = None
) -> dict[str, object]:
    started = time.perf_counter()
    source = source or source_format
    if source == LANDING_SOURCE:
        raise ValueError(f"source name {LANDING_SOURCE!r} is the nightly landing's; name the import otherwise")
    adapter = importlib.import_module(f"pipelines.sources.{source_format}")
    records = import_landing_dates(adapter.landing_records(spark, path), now_utc(), settings.ingest)
    counts = publish_landing_records(
        spark, settings.lakehouse, records, PublishScope(source), settings.ingest, job=f"import {source_format}"
    )
    figures: dict[str, object] = {"format": source_format, "records": counts.pop("landed"), **counts}
    if hasattr(adapter, "history_entries_left_out"):
        figures["history_entries_left_out"] = adapter.history_entries_left_out(spark, path)
    figures["seconds"] = round(time.perf_counter() - started, 2)
    return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Import a public clickstream dataset into bronze.")
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--input", required=True, help="the dataset's file or folder")
    parser.add_argument("--source", help="the name this import's rows carry (default: the format)")
    parser.add_argument("--lakehouse", help="lakehouse root URI (default: configured lakehouse)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    args = parse(parser, argv)
    settings = settings_from(args, lakehouse=args.lakehouse)
    spark = spark_session(settings.spark, f"seqlake-import-{args.format}")
    figures = run_job("import", lambda: import_source(spark, settings, args.format, args.input, args.source))
    print_summary("import", figures, as_json=args.json)


if __name__ == "__main__":
    main()
