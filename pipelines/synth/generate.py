"""Generating landing files and their truth, in (day, user chunk) tasks over worker processes.

Each task rebuilds the world from the seed, so the output is the same
whatever the number of workers, and rerunning rewrites identical files.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import gzip
import io
import time

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.config import GeneratorSettings
from pipelines.lakehouse.files import write_atomically
from pipelines.synth.behavior import day_events
from pipelines.synth.delivery import delivered_lines
from pipelines.synth.layout import (
    landing_file,
    landing_marker_file,
    truth_deliveries_file,
    truth_events_file,
)
from pipelines.synth.world import Items, chunk_count, world_items, world_users

TRUTH_EVENT_COLUMNS = [
    "event_id", "event_type", "user_id", "item_id", "impression_id", "ts",
    "label", "click_prob", "click_prob_nightly", "is_bot_user", "user_kind",
]


@dataclasses.dataclass(frozen=True)
class TaskResult:
    events: int
    lines_by_date: dict[dt.date, int]


def generate(settings: GeneratorSettings, landing: str, truth: str) -> dict[str, object]:
    """Generate every (day, chunk) and return the run's figures."""
    started = time.perf_counter()
    tasks = [(day, chunk) for day in range(settings.days) for chunk in range(chunk_count(settings))]
    run_task = functools.partial(_generate_task, settings, landing, truth)
    events = 0
    lines: dict[dt.date, int] = {}
    parallel = settings.workers > 1
    with concurrent.futures.ProcessPoolExecutor(settings.workers) if parallel else contextlib.nullcontext() as pool:
        for result in (pool.map if parallel else map)(run_task, tasks):
            events += result.events
            for date, count in result.lines_by_date.items():
                lines[date] = lines.get(date, 0) + count
    # As an upstream would: each landing folder is marked complete once every file of it is written.
    for date in lines:
        write_atomically(landing_marker_file(landing, date), b"")
    seconds = time.perf_counter() - started
    return {
        "events": events,
        "lines": sum(lines.values()),
        "landing_dates": len(lines),
        "seconds": round(seconds, 2),
        "events_per_minute": round(events / seconds * 60),
        "landing": landing,
        "truth": truth,
    }


@functools.lru_cache(maxsize=2)
def _items(settings: GeneratorSettings) -> Items:
    return world_items(settings)


def _generate_task(settings: GeneratorSettings, landing: str, truth: str, task: tuple[int, int]) -> TaskResult:
    day, chunk = task
    events = day_events(settings, _items(settings), world_users(settings, chunk), day, chunk)
    delivery = delivered_lines(events, settings, day, chunk)
    event_date = settings.start_date + dt.timedelta(days=day)
    for landing_date, lines in delivery.lines.items():
        # mtime=0 keeps reruns byte-identical.
        payload = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=3, mtime=0)
        write_atomically(landing_file(landing, landing_date, day, chunk, late=landing_date != event_date), payload)
    _write_parquet(events[TRUTH_EVENT_COLUMNS], truth_events_file(truth, event_date, day, chunk))
    for landing_date, part in delivery.truth.groupby("landing_date"):
        _write_parquet(part.drop(columns="landing_date"), truth_deliveries_file(truth, landing_date, day, chunk))
    return TaskResult(len(events), {d: len(v) for d, v in delivery.lines.items()})


def _write_parquet(frame, uri: str) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    write_atomically(uri, buffer.getvalue())
