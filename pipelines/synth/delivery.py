"""How an at-least-once upstream delivers events: JSON lines per landing date,
with duplicates, late arrivals and malformed records, plus the truth of each line."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd

from pipelines.clickstream.schema import LANDING_FIELDS, REQUIRED_FIELDS, RejectReason
from pipelines.config import GeneratorSettings

# The generated upstream logs no scroll depth (its users do not scroll): the
# field is left out, as such an upstream leaves it out.
LANDING_COLUMNS = [f.name for f in LANDING_FIELDS if f.name != "scroll_pct"]
# Malformations an upstream produces, each named by the reject reason ingest must give it.
MALFORMATIONS = (
    RejectReason.MALFORMED_RECORD,
    RejectReason.MISSING_FIELD,
    RejectReason.WRONG_TYPE,
    RejectReason.NEGATIVE_DWELL,
    RejectReason.FUTURE_TIMESTAMP,
    RejectReason.STALE_TIMESTAMP,
    RejectReason.UNKNOWN_EVENT_TYPE,
)
# Of the duplicate copies, this share is redelivered with the next day's folder.
_REDELIVERED_NEXT_DAY = 0.2
_NUMERIC_FIELDS = ("user_id", "item_id", "ts", "position", "dwell_ms")


@dataclasses.dataclass(frozen=True)
class Delivery:
    lines: dict[dt.date, list[str]]  # landing date -> JSON lines
    truth: pd.DataFrame  # one row per line: event_id, landing_date, is_duplicate, malformation


def delivered_lines(
    events: pd.DataFrame, settings: GeneratorSettings, day: int, chunk: int
) -> Delivery:
    """Serialize `events` (of day index `day`) as the landing lines an upstream would write."""
    rng = np.random.default_rng([settings.seed, 0xDE1, day, chunk])
    n = len(events)
    has_next_day = day + 1 < settings.days
    text = events[LANDING_COLUMNS].to_json(orient="records", lines=True).splitlines() if n else []
    event_ids = events["event_id"].to_numpy()

    late = (rng.random(n) < settings.late_rate) & has_next_day
    duplicated = np.flatnonzero(rng.random(n) < settings.duplicate_rate)
    copy_next_day = (rng.random(len(duplicated)) < _REDELIVERED_NEXT_DAY) & has_next_day
    line_event = np.r_[np.arange(n), duplicated]
    line_late = np.r_[late, late[duplicated] | copy_next_day]
    is_duplicate = np.r_[np.zeros(n, bool), np.ones(len(duplicated), bool)]

    lines = [text[i] for i in line_event]
    malformed = np.flatnonzero(rng.random(len(lines)) < settings.malformed_rate)
    kinds = rng.integers(0, len(MALFORMATIONS), size=len(malformed))
    malformation = np.full(len(lines), None, dtype=object)
    for line_no, kind in zip(malformed, kinds, strict=True):
        reason = MALFORMATIONS[kind]
        lines[line_no] = _malformed(lines[line_no], reason, rng)
        malformation[line_no] = reason.value

    today = settings.start_date + dt.timedelta(days=day)
    landing = np.where(line_late, today + dt.timedelta(days=1), today)
    truth = pd.DataFrame(
        {
            "event_id": event_ids[line_event],
            "landing_date": landing,
            "is_duplicate": is_duplicate,
            "malformation": malformation,
        }
    )
    by_date: dict[dt.date, list[str]] = {}
    for date in np.unique(landing):
        by_date[date] = [lines[i] for i in np.flatnonzero(landing == date)]
    return Delivery(lines=by_date, truth=truth)


def _malformed(line: str, reason: RejectReason, rng: np.random.Generator) -> str:
    if reason is RejectReason.MALFORMED_RECORD:
        return line[: int(rng.integers(1, len(line) - 1))]
    record = json.loads(line)
    match reason:
        case RejectReason.MISSING_FIELD:
            del record[REQUIRED_FIELDS[int(rng.integers(len(REQUIRED_FIELDS)))]]
        case RejectReason.WRONG_TYPE:
            field = _NUMERIC_FIELDS[int(rng.integers(len(_NUMERIC_FIELDS)))]
            record[field] = ["n/a", "12abc", "true", "1.5e"][int(rng.integers(4))]
        case RejectReason.NEGATIVE_DWELL:
            record["dwell_ms"] = -int(rng.integers(1, 60_000))
        case RejectReason.FUTURE_TIMESTAMP:
            record["ts"] += int(rng.integers(30, 400)) * 86_400_000
        case RejectReason.STALE_TIMESTAMP:
            record["ts"] -= int(rng.integers(30, 4000)) * 86_400_000
        case RejectReason.UNKNOWN_EVENT_TYPE:
            record["event_type"] = ["hover", "pageview_legacy", "Click", "scroll_depth"][int(rng.integers(4))]
    return json.dumps(record, separators=(",", ":"))
