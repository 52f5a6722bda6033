"""seqlake import: a public dataset's files -> bronze, through the same rules as
ingest (pipelines.stages.imports).

    seqlake import --format {ebnerd,taobao,kuairand,mind} --input PATH [--source NAME] [--lakehouse URI]
"""

from __future__ import annotations

import argparse

from jobs.cli import run_command, source_name
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.stages.imports import FORMATS, import_source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, required=True)
    parser.add_argument("--input", required=True, help="the dataset's file or folder")
    parser.add_argument("--source", type=source_name, help="the name this import's rows carry (default: the format)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    spark = spark_session(settings, f"seqlake-import-{args.format}")
    return import_source(spark, settings, args.format, args.input, args.source)


if __name__ == "__main__":
    run_command("import")
