"""The bad-input corpus: the kinds of file a landing folder receives, each a
small file with the outcome ingest must give it (so many bronze rows, so
many rejected rows per reason). Built here rather than stored, so that each
case reads as what it is; `land_corpus` writes them into a landing folder.

Events land on 2026-11-02 (DAY); each case's event ids are its own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

DAY = dt.date(2026, 11, 2)
NOON_MS = int(dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC).timestamp() * 1000)
_DAY_MS = 86_400_000


@dataclasses.dataclass(frozen=True)
class BadInput:
    kind: str
    # Relative to the landing folder; a hidden one (_x, .x) is skipped by name.
    path: str
    data: bytes
    bronze: int = 0
    # Rejected rows per reason; None: every line of a file that is not text
    # rejected, as whatever its bytes look like (ANY_BINARY_REASON).
    rejected: dict[str, int] | None = dataclasses.field(default_factory=dict)
    skipped: bool = False


# What the lines of a binary file read as text are rejected as.
ANY_BINARY_REASON = frozenset({"invalid_encoding", "malformed_record", "empty_record"})


def record(case: str, n: int = 0, **changes) -> dict:
    """A valid click of the landing contract, event id `case-n`, with `changes` (... drops a field)."""
    fields = {
        "event_id": f"{case}-{n}", "event_type": "click", "user_id": 7, "item_id": 70, "ts": NOON_MS,
        "category_id": 3, "impression_id": f"{case}-imp", "position": 2, "dwell_ms": 15000, "content_length": 80,
        **changes,
    }
    return {k: v for k, v in fields.items() if v is not ...}


def line(case: str, n: int = 0, **changes) -> str:
    return json.dumps(record(case, n, **changes))


def _lines(*lines: str, end: str = "\n") -> bytes:
    return (end.join(lines) + end).encode()


def _gz(data: bytes) -> bytes:
    return gzip.compress(data)


def _parquet(case: str) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([record(case)]), sink)
    return sink.getvalue()


def corpus() -> list[BadInput]:
    good = _gz(_lines(line("gzip", 0), line("gzip", 1)))
    return [
        BadInput("valid gzip JSON lines", "valid.jsonl.gz", good, bronze=2),
        BadInput("valid plain JSON lines", "valid.jsonl", _lines(line("plain")), bronze=1),
        BadInput("a file in a subfolder", "hour=03/deeper.jsonl", _lines(line("deeper")), bronze=1),
        BadInput("Windows line ends (CRLF)", "crlf.jsonl", _lines(line("crlf", 0), line("crlf", 1), end="\r\n"), bronze=2),
        BadInput("no newline after the last line", "no-final-newline.jsonl", line("nofinal").encode(), bronze=1),
        BadInput("a UTF-8 byte order mark", "bom.jsonl", "\ufeff".encode() + _lines(line("bom", 0), line("bom", 1)), bronze=2),
        # UTF-16 splits on the newline's bytes: the record's line and the newline's second byte.
        BadInput("UTF-16", "utf-16.jsonl", (line("utf16") + "\n").encode("utf-16"), rejected={"invalid_encoding": 2}),
        BadInput("Latin-1", "latin-1.jsonl", json.dumps(record("latin", impression_id="caf\xe9"), ensure_ascii=False).encode("latin-1") + b"\n",
                 rejected={"invalid_encoding": 1}),
        BadInput("a NUL byte in a line", "nul.jsonl", _lines(line("nul").replace("click", "cl\x00ick")),
                 rejected={"invalid_encoding": 1}),
        BadInput("a truncated gzip member", "truncated.jsonl.gz", good[: len(good) // 2], rejected={"unreadable_file": 1}),
        BadInput("a .gz file that is not gzip", "not-gzip.jsonl.gz", _lines(line("notgz")), rejected={"unreadable_file": 1}),
        BadInput("an empty file", "empty.jsonl", b""),
        BadInput("blank lines", "blank.jsonl", _lines(line("blank"), "", "   "), bronze=1, rejected={"empty_record": 2}),
        BadInput("a 10 MB line", "huge.jsonl", _lines(line("huge", impression_id="x" * 10_000_000)),
                 rejected={"oversized_record": 1}),
        BadInput("NaN and Infinity", "nan.jsonl", _lines(
            line("nan", 0).replace('"dwell_ms": 15000', '"dwell_ms": NaN'),
            line("nan", 1).replace('"position": 2', '"position": Infinity')), rejected={"wrong_type": 2}),
        BadInput("a key written twice", "dup-key.jsonl", _lines(line("dupkey").replace('"user_id": 7', '"user_id": 7, "user_id": 8')),
                 rejected={"duplicate_key": 1}),
        BadInput("objects and arrays where scalars belong", "nested.jsonl", _lines(
            line("nested", 0, user_id={"id": 7}), line("nested", 1, item_id=[70]), json.dumps(record("nested", 2) | {"event_id": {"id": "x"}})),
            rejected={"wrong_type": 3}),
        BadInput("ids beyond int64", "big-id.jsonl", _lines(line("bigid", 0, user_id=2**63), line("bigid", 1, item_id=-(2**64))),
                 rejected={"wrong_type": 2}),
        BadInput("numbers as strings", "numeric-strings.jsonl", _lines(line("numstr", user_id="7", ts=str(NOON_MS), dwell_ms="1200")),
                 bronze=1),
        BadInput("booleans as numbers", "booleans.jsonl", _lines(line("bool", 0, dwell_ms=True), line("bool", 1, user_id=False)),
                 rejected={"wrong_type": 2}),
        BadInput("a float where an integer belongs", "float.jsonl", _lines(line("float", item_id=70.5)), rejected={"wrong_type": 1}),
        BadInput("ts in seconds", "ts-seconds.jsonl", _lines(line("tss", ts=NOON_MS // 1000)), rejected={"wrong_time_unit": 1}),
        BadInput("ts in microseconds", "ts-micros.jsonl", _lines(line("tsu", ts=NOON_MS * 1000)), rejected={"wrong_time_unit": 1}),
        BadInput("ts as an ISO time with its zone", "ts-iso-zoned.jsonl", _lines(
            line("isoz", 0, ts="2026-11-02T12:00:00Z"), line("isoz", 1, ts="2026-11-02T07:00:00-05:00")), bronze=2),
        BadInput("ts as an ISO time without a zone", "ts-iso-local.jsonl", _lines(line("isol", ts="2026-11-02 12:00:00")),
                 rejected={"ambiguous_timestamp": 1}),
        BadInput("ts as a date word", "ts-text.jsonl", _lines(line("tstext", ts="yesterday")), rejected={"wrong_type": 1}),
        BadInput("a renamed field (user_id -> userId)", "renamed.jsonl", _lines(line("renamed", user_id=..., userId=7)),
                 rejected={"missing_field": 1}),
        BadInput("an added field", "added.jsonl", _lines(line("added", browser="firefox")), bronze=1),
        BadInput("a dropped optional field", "dropped.jsonl", _lines(line("dropped", content_length=..., category_id=...)), bronze=1),
        BadInput("a required field null", "null.jsonl", _lines(line("null", item_id=None)), rejected={"missing_field": 1}),
        BadInput("an unknown event type", "hover.jsonl", _lines(line("hover", event_type="hover")), rejected={"unknown_event_type": 1}),
        BadInput("a negative dwell", "negative.jsonl", _lines(line("neg", dwell_ms=-1)), rejected={"negative_dwell": 1}),
        BadInput("a scroll depth past 100%, or below 0", "scroll.jsonl", _lines(
            line("scroll", 0, scroll_pct=150), line("scroll", 1, scroll_pct=-5), line("scroll", 2, scroll_pct=100),
            line("scroll", 3, scroll_pct=0.5)), bronze=2, rejected={"scroll_out_of_range": 2}),
        BadInput("a scroll depth as a word", "scroll-word.jsonl", _lines(line("scrollw", scroll_pct="deep")),
                 rejected={"wrong_type": 1}),
        BadInput("events of a future date", "future.jsonl", _lines(line("future", ts=NOON_MS + 3 * _DAY_MS)),
                 rejected={"future_timestamp": 1}),
        BadInput("events older than the lateness allowed", "stale.jsonl", _lines(line("stale", ts=NOON_MS - 40 * _DAY_MS)),
                 rejected={"stale_timestamp": 1}),
        BadInput("an event id twice with different contents", "conflict.jsonl", _lines(
            line("conflict", dwell_ms=1000), line("conflict", dwell_ms=90000)), rejected={"conflicting_event_id": 2}),
        BadInput("an event delivered twice, the same", "redelivered.jsonl", _lines(line("again"), line("again")), bronze=2),
        BadInput("a JSON array per line", "array.jsonl", _lines(json.dumps([record("array")])), rejected={"malformed_record": 1}),
        BadInput("pretty-printed JSON", "pretty.json", _lines(*json.dumps(record("pretty"), indent=1).splitlines()),
                 rejected={"malformed_record": 12}),
        BadInput("a truncated line", "cut.jsonl", _lines(line("cut")[:50]), rejected={"malformed_record": 1}),
        BadInput("CSV where JSON lines were expected", "events.csv", _lines(
            "event_id,event_type,user_id,item_id,ts", f"csv-0,click,7,70,{NOON_MS}"), rejected={"malformed_record": 2}),
        BadInput("a non-JSON file (a log)", "upload.log", _lines("INFO upload started", "INFO upload done"),
                 rejected={"malformed_record": 2}),
        BadInput("a Parquet file where JSON lines were expected", "events.parquet", _parquet("parquet"), rejected=None),
        BadInput("the _SUCCESS marker", "_SUCCESS", b"", skipped=True),
        BadInput("an upload in progress (hidden)", ".part-0001.jsonl", _lines(line("hidden")), skipped=True),
        BadInput("a writer's _temporary folder", "_temporary/0/part-0.jsonl", _lines(line("temporary")), skipped=True),
    ]


def land_corpus(folder: Path, cases: list[BadInput]) -> None:
    for case in cases:
        target = folder / case.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(case.data)
