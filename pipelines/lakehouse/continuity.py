"""An unbroken past: a night's data stage runs only on dates whose inputs were published.

When the ingest of D fails, night D + 1 would otherwise clean D - L .. D + 1
and publish silver of D holding only the late events that landed in D + 1's
folder, and every later stage would build on that broken day. So before it
writes, a stage run for the nights [start, end] that rewrites [first, end]
asks the run ledger (ops/runs, finished runs only) two things:

- every date of [first, end] was written by a finished run of each stage it
  reads (clean reads what ingest wrote, sequences and examples what clean
  wrote), counting from the first date that stage ever wrote: a lakehouse has
  no history before its first night;
- the night before `start` finished this stage, once the stage has finished
  any night before `start`: a stage's first run starts its history, and after
  that no night may be skipped.

Otherwise it raises BrokenPastError naming the dates and the backfill that
heals them: `seqlake run` over the broken nights (or the seqlake_backfill DAG),
then the refused night again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pipelines.errors import BrokenPastError
from pipelines.lakehouse.dates import days_between
from pipelines.lakehouse.ledger import ledger_rows, run_nights

_NAMED = 5


def unbroken_past_problems(
    ledger: list[dict], stage: str, nights: tuple[dt.date, dt.date], first: dt.date, inputs: Sequence[str],
) -> list[tuple[str, list[dt.date]]]:
    """What stops `stage` run for `nights` (rewriting first..nights[1]), from
    the ledger's rows: (what is missing, the dates), nothing when the past is unbroken."""
    start, end = nights
    problems = []
    for upstream in inputs:
        written = {day for row in ledger if row["stage"] == upstream for day in row["dates"]}
        if not written:
            continue
        missing = [day for day in days_between(max(first, min(written)), end) if day not in written]
        if missing:
            problems.append((f"no finished {upstream} run wrote", missing))
    own_nights = {day for row in ledger if row["stage"] == stage for day in run_nights(row)}
    before = start - dt.timedelta(days=1)
    if any(day < start for day in own_nights) and before not in own_nights:
        last = max(day for day in own_nights if day < start)
        problems.append((f"no finished {stage} run for the nights", days_between(last + dt.timedelta(days=1), before)))
    return problems


def require_unbroken_past(
    lakehouse: str, stage: str, nights: tuple[dt.date, dt.date], first: dt.date, inputs: Sequence[str],
) -> None:
    """BrokenPastError (with the command that heals it) unless `stage` may run
    for `nights`, rewriting first..nights[1], after the inputs' stages."""
    problems = unbroken_past_problems(ledger_rows(lakehouse).to_pylist(), stage, nights, first, inputs)
    if not problems:
        return
    broken = min(day for _, days in problems for day in days)
    said = "; ".join(f"{what} {_dates(days)}" for what, days in problems)
    raise BrokenPastError(
        f"{stage} for {_span(*nights)} refused: {said}. Publishing now would build on a broken day. "
        f"Heal it with `seqlake run --start {broken} --end {nights[1]}` (or trigger seqlake_backfill with "
        f"{{\"start\": \"{broken}\", \"end\": \"{nights[1]}\"}}), which reruns those nights in order"
    )


def _span(first: dt.date, last: dt.date) -> str:
    return str(first) if first == last else f"{first}..{last}"


def _dates(days: list[dt.date]) -> str:
    named = ", ".join(map(str, days[:_NAMED]))
    return named + (f" and {len(days) - _NAMED} more" if len(days) > _NAMED else "")
