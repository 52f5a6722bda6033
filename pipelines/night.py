"""The night's steps, in order: one list for the DAG (dags/nightly.py makes a
task of each) and for `seqlake run` (`run_night` runs them in a process).

A step with nothing to do tonight (no training on this night's cadence, no
champion yet) is skipped and so are the steps after it, except those marked
`after_skip` (Airflow's none_failed). The night trains before it hashes
signatures so that the BSE buckets of the night's date are built once, under
the embeddings of the champion that the gate has just settled; examples of a
date read the signatures of the day before, which the previous night built.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pipelines.errors import NothingToDo, PipelineError
from pipelines.masking import masked


@dataclasses.dataclass(frozen=True)
class Step:
    task_id: str
    command: str
    # "{day}": the day the step works on.
    args: tuple[str, ...]
    # What runs it on a cluster: spark-submit, Ray's job API, or the Airflow worker.
    engine: Literal["spark", "ray", "local"]
    after_skip: bool = False
    # The night's date (the day that ended), or the day after it, which the
    # night prepares and scores from what it published.
    day: Literal["night", "next_day"] = "night"

    def argv(self, night: str, next_day: str) -> list[str]:
        return [a.format(day=next_day if self.day == "next_day" else night) for a in self.args]

    def day_of(self, night: dt.date) -> dt.date:
        return night + dt.timedelta(days=1) if self.day == "next_day" else night


NIGHT: tuple[Step, ...] = (
    Step("ingest_events", "ingest", ("--date", "{day}"), "spark"),
    Step("clean_events", "clean", ("--date", "{day}"), "spark"),
    Step("build_sequences", "sequences", ("--date", "{day}"), "spark"),
    Step("build_examples", "examples", ("--date", "{day}"), "spark"),
    Step("train_model", "train", ("--night", "{day}"), "ray"),
    Step("gate_model", "models", ("gate", "--date", "{day}"), "ray"),
    Step("export_embeddings", "models", ("export",), "spark", after_skip=True),
    Step("build_signatures", "signatures", ("--date", "{day}"), "spark", after_skip=True),
    Step("build_candidates", "candidates", ("--date", "{day}"), "spark", day="next_day"),
    Step("score_candidates", "score", ("--date", "{day}"), "ray", day="next_day"),
    Step("write_report", "report", ("--date", "{day}"), "local", after_skip=True),
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


def run_night(night: dt.date, run_step: Callable[[str, list[str]], Mapping[str, Any]],
              from_step: str | None = None) -> dict[str, str]:
    """Run NIGHT for `night` in order (from `from_step` on), each step as
    `run_step(command, argv)`; {task_id: "success" | "skipped"}. A failed step
    raises NightFailed: the steps after it are not run."""
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
            figures = run_step(step.command, argv)
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


def _brief(figures: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in figures.items() if not isinstance(v, dict | list) and k not in ("seconds", "date")}
    return masked(" ".join(f"{k}={v}" for k, v in list(shown.items())[:6]))
