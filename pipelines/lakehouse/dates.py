"""Which dates a run writes: a night D, or a range of nights, rewrites D - lookback .. D."""

from __future__ import annotations

import datetime as dt


def rewritten_dates(start: dt.date, end: dt.date, lookback_days: int) -> tuple[dt.date, dt.date]:
    """(first, last) date that the nightly runs of start..end rewrite between them:
    each night rewrites its look-back window, where late events may have landed."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return start - dt.timedelta(days=lookback_days), end


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def oldest_kept(first: dt.date, last: dt.date, retention_days: int) -> dt.date:
    """The oldest as-of date a run writing [first, last] keeps: retention_days
    back from `last`, but never a date the run itself wrote or the day before
    them, which the same range's later stages read as features."""
    return min(last - dt.timedelta(days=retention_days), first - dt.timedelta(days=1))
