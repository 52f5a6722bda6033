"""seqlake run: the whole night of a date without Airflow, the steps the DAG runs.

    seqlake run --date D            the night of D (the day that ended)
    seqlake run --start D1 --end D2 each night of the range in turn, oldest first
    seqlake run --date D --from S   resume the night at step S (after fixing what stopped it)

`NIGHT` is the one list of the night's steps: dags/nightly.py makes a task of
each, this command runs them in this process. A step with nothing to do
tonight (no training on this night's cadence, no champion yet) is skipped and
so are the steps after it, except those marked `after_skip` (Airflow's
none_failed). A failure - a quality gate, a missing input - stops the night:
nothing after it runs, and what the failed step would have published is not.

The night trains before it hashes signatures so that the BSE buckets of the
night's date are built once, under the embeddings of the champion that the
gate has just settled; examples of a date read the signatures of the day
before, which the previous night built.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import time
from typing import Literal

from jobs.cli import add_night_arguments, invoke, nights, run_command
from pipelines.config import Settings
from pipelines.errors import NothingToDo, PipelineError


@dataclasses.dataclass(frozen=True)
class Step:
    task_id: str
    command: str
    # "{night}": the date that ended; "{next_day}": the day after it (the day scored).
    args: tuple[str, ...]
    # What runs it on a cluster: spark-submit, Ray's job API, or the Airflow worker.
    engine: Literal["spark", "ray", "local"]
    after_skip: bool = False

    def argv(self, night: str, next_day: str) -> list[str]:
        return [a.format(night=night, next_day=next_day) for a in self.args]


NIGHT: tuple[Step, ...] = (
    Step("ingest_events", "ingest", ("--date", "{night}"), "spark"),
    Step("clean_events", "clean", ("--date", "{night}"), "spark"),
    Step("build_sequences", "sequences", ("--date", "{night}"), "spark"),
    Step("build_examples", "examples", ("--date", "{night}"), "spark"),
    Step("train_model", "train", ("--night", "{night}"), "ray"),
    Step("gate_model", "models", ("gate", "--date", "{night}"), "ray"),
    Step("export_embeddings", "models", ("export",), "spark", after_skip=True),
    Step("build_signatures", "signatures", ("--date", "{night}"), "spark", after_skip=True),
    Step("build_candidates", "candidates", ("--date", "{next_day}"), "spark"),
    Step("score_candidates", "score", ("--date", "{next_day}"), "ray"),
    Step("write_report", "report", ("--date", "{night}"), "local", after_skip=True),
)

# A backfill re-runs the data stages of a date range, each stage once over the
# whole range (the range runs equal night-by-night runs; tests compare them).
BACKFILL: tuple[Step, ...] = tuple(
    Step(f"backfill_{command}", command, ("--start", "{start}", "--end", "{end}"), "spark")
    for command in ("ingest", "clean", "sequences", "signatures", "examples")
)


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
