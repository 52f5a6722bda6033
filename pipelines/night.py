"""The night's steps, in order: one list for the DAG (dags/nightly.py makes a
task of each) and for `seqlake run` (jobs/night.py runs them in a process).

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
from typing import Literal


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
