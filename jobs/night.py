"""seqlake run: the whole night of a date without Airflow, the steps the DAG runs.

    seqlake run --date D            the night of D (the day that ended)
    seqlake run --start D1 --end D2 each night of the range in turn, oldest first
    seqlake run --date D --from S   resume the night at step S (after fixing what stopped it)

Runs pipelines.night.NIGHT in this process, each step its command as the CLI
runs it. A failure - a quality gate, a missing input - stops the night:
nothing after it runs, and what the failed step would have published is not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from jobs.cli import add_night_arguments, invoke, nights, run_command
from pipelines.config import Settings
from pipelines.errors import NothingToDo, PipelineError
from pipelines.night import NIGHT


class NightFailed(PipelineError):
    """A step of the night failed; the steps after it did not run."""

    def __init__(self, night: dt.date, step: str, states: dict[str, str], cause: BaseException):
        not_run = [task for task, state in states.items() if state == "upstream_failed"]
        super().__init__(f"night of {night}: {step} failed: {cause}\nnot run: {', '.join(not_run) or '-'}")
        self.states = states


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
        states[night.isoformat()] = run_night(settings, night, args.from_step)
    return {"nights": len(states), "states": states, "seconds": round(time.perf_counter() - started, 1)}


def run_night(settings: Settings, night: dt.date, from_step: str | None = None) -> dict[str, str]:
    """Run NIGHT for `night` in order (from `from_step` on); {task_id: "success" |
    "skipped"}. A failed step raises NightFailed: the steps after it are not run."""
    steps = [s.task_id for s in NIGHT]
    states: dict[str, str] = {}
    previous = "success"
    for step in NIGHT[steps.index(from_step) if from_step else 0:]:
        argv = step.argv(night.isoformat(), (night + dt.timedelta(days=1)).isoformat())
        began = time.perf_counter()
        if previous == "skipped" and not step.after_skip:
            states[step.task_id] = previous = "skipped"
            print(f"   {step.task_id:<18} skipped (a step before it was)", flush=True)
            continue
        try:
            figures = invoke(step.command, argv, settings)
            states[step.task_id] = previous = "success"
            print(f"   {step.task_id:<18} done in {time.perf_counter() - began:6.1f} s  {_brief(figures)}", flush=True)
        except NothingToDo as reason:
            states[step.task_id] = previous = "skipped"
            print(f"   {step.task_id:<18} skipped: {reason}", flush=True)
        except Exception as failure:
            states[step.task_id] = "failed"
            states.update({later: "upstream_failed" for later in steps[steps.index(step.task_id) + 1:]})
            print(f"   {step.task_id:<18} FAILED after {time.perf_counter() - began:.1f} s", flush=True)
            raise NightFailed(night, step.task_id, states, failure) from failure
    return states


def _brief(figures: dict[str, object]) -> str:
    shown = {k: v for k, v in figures.items() if not isinstance(v, dict | list) and k not in ("seconds", "date")}
    return " ".join(f"{k}={v}" for k, v in list(shown.items())[:6])


if __name__ == "__main__":
    run_command("run")
