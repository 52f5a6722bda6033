"""seqlake ingest: one landing date's files -> bronze/events + bronze/events_rejected
(pipelines.stages.ingest).

Runnable as `seqlake ingest --date D`, `python -m jobs.ingest_events --date D`
and `spark-submit jobs/ingest_events.py --date D`; `--start D1 --end D2`
ingests each landing date of the range in turn, one commit each (a backfill).
"""

from __future__ import annotations

import argparse

from jobs.cli import add_night_arguments, nights, run_command, settings_flag
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.stages.ingest import ingest_dates


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)
    settings_flag(parser, "--landing", "landing", metavar="URI", help="landing root (default: configured)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    return ingest_dates(spark_session(settings, "seqlake-ingest"), settings, *nights(args))


if __name__ == "__main__":
    run_command("ingest")
