"""seqlake run: the whole night of a date without Airflow, the steps the DAG runs.

    seqlake run --date D            the night of D (the day that ended)
    seqlake run --start D1 --end D2 each night of the range in turn, oldest first
    seqlake run --date D --from S   resume the night at step S (after fixing what stopped it)

Runs pipelines.night.NIGHT in this process, each step its command as the CLI
runs it. A failure - a quality gate, a missing input - stops the night
(NightFailed): nothing after it runs, and what the failed step would have
published is not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import time

from jobs.cli import add_night_arguments, invoke, nights, run_command
from pipelines.config import Settings
from pipelines.night import NIGHT, run_night


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_night_arguments(parser)
    parser.add_argument("--from", dest="from_step", choices=[s.task_id for s in NIGHT],
                        help="resume each night at this step (after fixing what stopped it)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    first, last = nights(args)
    started = time.perf_counter()
    states: dict[str, dict[str, str]] = {}
    for offset in range((last - first).days + 1):
        night = first + dt.timedelta(days=offset)
        print(f"== night of {night}", flush=True)
        states[night.isoformat()] = run_night(night, functools.partial(invoke, settings=settings), args.from_step)
    return {"nights": len(states), "states": states, "seconds": round(time.perf_counter() - started, 1)}


if __name__ == "__main__":
    run_command("run")
