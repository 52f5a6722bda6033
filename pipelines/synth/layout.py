"""Where the generator writes: landing files an upstream would deliver, and the truth beside them.

    landing/events/date=YYYY-MM-DD/part-dDDDD-cCCCCC.jsonl.gz   lines of that landing date
    landing/events/date=YYYY-MM-DD/late-dDDDD-cCCCCC.jsonl.gz   events of earlier days landing late
    landing/events/date=YYYY-MM-DD/_SUCCESS                     written last: the folder is complete
    truth/events/event_date=YYYY-MM-DD/part-dDDDD-cCCCCC.parquet      one row per event
    truth/deliveries/landing_date=YYYY-MM-DD/part-dDDDD-cCCCCC.parquet   one row per landing line
"""

from __future__ import annotations

import datetime as dt

from pipelines.clickstream.landing import landing_folder


def task_name(day: int, chunk: int) -> str:
    return f"d{day:04d}-c{chunk:05d}"


def landing_file(landing: str, landing_date: dt.date, day: int, chunk: int, late: bool) -> str:
    return f"{landing_folder(landing, landing_date)}/{'late' if late else 'part'}-{task_name(day, chunk)}.jsonl.gz"


def landing_marker_file(landing: str, landing_date: dt.date) -> str:
    """The completion marker, as Spark and Hadoop writers leave it (night.landing_marker's default)."""
    return f"{landing_folder(landing, landing_date)}/_SUCCESS"


def truth_events_folder(truth: str, event_date: dt.date) -> str:
    return f"{truth.rstrip('/')}/events/event_date={event_date.isoformat()}"


def truth_events_file(truth: str, event_date: dt.date, day: int, chunk: int) -> str:
    return f"{truth_events_folder(truth, event_date)}/part-{task_name(day, chunk)}.parquet"


def truth_deliveries_file(truth: str, landing_date: dt.date, day: int, chunk: int) -> str:
    return f"{truth.rstrip('/')}/deliveries/landing_date={landing_date.isoformat()}/part-{task_name(day, chunk)}.parquet"
