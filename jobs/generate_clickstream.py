"""seqlake generate: write synthetic landing files and their truth.

Work is split into (day, user chunk) tasks run in worker processes; each task
rebuilds the world from the seed, so the output is the same whatever the
number of workers, and rerunning rewrites identical files.
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
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from jobs.runtime import iso_date, job_parser, parse, print_summary, settings_from
from pipelines.lakehouse.files import write_atomically
from pipelines.config import GeneratorSettings
from pipelines.synth.behavior import day_events
from pipelines.synth.delivery import delivered_lines
from pipelines.synth.world import chunk_count, world_items, world_users

_TRUTH_EVENT_COLUMNS = [
    "event_id", "event_type", "user_id", "item_id", "impression_id", "ts",
    "label", "click_prob", "is_bot_user", "user_kind",
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
def _items(settings: GeneratorSettings):
    return world_items(settings)


def _generate_task(settings: GeneratorSettings, landing: str, truth: str, task: tuple[int, int]) -> TaskResult:
    day, chunk = task
    events = day_events(settings, _items(settings), world_users(settings, chunk), day, chunk)
    delivery = delivered_lines(events, settings, day, chunk)
    name = f"d{day:04d}-c{chunk:05d}"
    for landing_date, lines in delivery.lines.items():
        kind = "part" if landing_date == settings.start_date + dt.timedelta(days=day) else "late"
        # mtime=0 keeps reruns byte-identical.
        payload = gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=3, mtime=0)
        write_atomically(f"{landing}/events/date={landing_date}/{kind}-{name}.jsonl.gz", payload)
    # Hive-style folders carry the date; the files do not repeat it.
    event_date = settings.start_date + dt.timedelta(days=day)
    _write_parquet(events[_TRUTH_EVENT_COLUMNS], f"{truth}/events/event_date={event_date}/part-{name}.parquet")
    for landing_date, part in delivery.truth.groupby("landing_date"):
        _write_parquet(
            part.drop(columns="landing_date"),
            f"{truth}/deliveries/landing_date={landing_date}/part-{name}.parquet",
        )
    return TaskResult(len(events), {d: len(v) for d, v in delivery.lines.items()})


def _write_parquet(frame, uri: str) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    write_atomically(uri, buffer.getvalue())


def main(argv: Sequence[str] | None = None) -> None:
    parser = job_parser("Write synthetic clickstream landing files and their truth table.")
    parser.add_argument("--out", help="write DIR/landing and DIR/truth instead of the configured roots")
    parser.add_argument("--users", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--start-date", type=iso_date)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--noise-scale", type=float)
    parser.add_argument("--malformed-rate", type=float)
    parser.add_argument("--workers", type=int)
    args = parse(parser, argv)
    shortcuts = {
        "generator.users": args.users,
        "generator.days": args.days,
        "generator.start_date": args.start_date,
        "generator.seed": args.seed,
        "generator.noise_scale": args.noise_scale,
        "generator.malformed_rate": args.malformed_rate,
        "generator.workers": args.workers,
    }
    if args.out:
        shortcuts |= {"landing": f"{args.out.rstrip('/')}/landing", "truth": f"{args.out.rstrip('/')}/truth"}
    settings = settings_from(args, **shortcuts)
    print_summary("generate", generate(settings.generator, settings.landing, settings.truth))


if __name__ == "__main__":
    main()
