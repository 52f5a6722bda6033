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
