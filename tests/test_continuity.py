"""An unbroken past: a night's data stages refuse to build on a date whose
ingest failed or whose night did not finish, and name the backfill that heals it."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pytest
from deltalake import DeltaTable

from pipelines.clickstream.landing import landing_folder
from pipelines.errors import BrokenPastError, MissingInputError
from pipelines.lakehouse.continuity import unbroken_past_problems
from pipelines.lakehouse.files import delta_rows
from pipelines.lakehouse.tables import SILVER_EVENTS, table_uri
from pipelines.stages.clean import clean_dates
from pipelines.stages.ingest import ingest_date
from pipelines.stages.sequences import build_sequences
from tests.conftest import settings_in

NOV = [dt.date(2026, 11, d) for d in range(1, 5)]


def run(stage: str, dates: list[dt.date], nights: list[dt.date] | None = None) -> dict:
    return {"stage": stage, "dates": dates, "nights": nights}


# --------------------------------------------------------------------------- the rule, on hand-built ledgers


def test_a_stage_needs_every_date_of_its_window_written_by_its_input_since_the_inputs_first_date():
    ingested = [run("ingest", [NOV[0]]), run("ingest", [NOV[2]])]
    # Night Nov 3 with a one-day look-back rewrites Nov 2..3: Nov 2 was never ingested.
    assert unbroken_past_problems(ingested, "clean", (NOV[2], NOV[2]), NOV[1], ["ingest"]) == [
        ("no finished ingest run wrote", [NOV[1]])]
    # Before the first ingested date there is no history to miss.
    assert unbroken_past_problems(ingested, "clean", (NOV[0], NOV[0]), NOV[0] - dt.timedelta(days=3), ["ingest"]) == []
    # No ledger at all (tables built by hand): nothing to check against.
    assert unbroken_past_problems([], "clean", (NOV[2], NOV[2]), NOV[1], ["ingest"]) == []


def test_once_a_stage_has_run_no_night_may_be_skipped():
    ledger = [run("ingest", [d]) for d in NOV] + [run("clean", [NOV[0] - dt.timedelta(days=1), NOV[0]], [NOV[0]])]
    assert unbroken_past_problems(ledger, "clean", (NOV[3], NOV[3]), NOV[2], ["ingest"]) == [
        ("no finished clean run for the nights", [NOV[1], NOV[2]])]
    assert unbroken_past_problems(ledger, "clean", (NOV[1], NOV[3]), NOV[0], ["ingest"]) == []  # the backfill
    # Its first run starts a stage's history; rerunning an old night after later ones is fine.
    assert unbroken_past_problems(ledger, "sequences", (NOV[3], NOV[3]), NOV[2], []) == []
    later = ledger + [run("clean", NOV[:4], NOV[1:4])]
    assert unbroken_past_problems(later, "clean", (NOV[0], NOV[0]), NOV[0], ["ingest"]) == []


def test_a_ledger_written_before_runs_recorded_their_nights_counts_every_date_written():
    ledger = [run("ingest", [d]) for d in NOV] + [run("clean", [NOV[0], NOV[1]])]
    assert unbroken_past_problems(ledger, "clean", (NOV[2], NOV[2]), NOV[1], ["ingest"]) == []


# --------------------------------------------------------------------------- the jobs


def _land(settings, day: dt.date, users: int = 6) -> None:
    """An impression and a click of each user around noon of `day` (dwell 10 s .. 60 s), and the completion marker."""
    noon = int(dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC).timestamp() * 1000)
    lines = []
    for u in range(1, users + 1):
        common = {"user_id": u, "item_id": 100 + u, "category_id": 1, "impression_id": f"{day}-{u}", "position": 0}
        at = noon + u * 600_000
        lines.append(json.dumps({**common, "event_id": f"{day}-i{u}", "event_type": "impression", "ts": at}))
        lines.append(json.dumps({**common, "event_id": f"{day}-c{u}", "event_type": "click", "ts": at + 1_000,
                                 "dwell_ms": 10_000 * u, "content_length": 100}))
    folder = Path(landing_folder(settings.landing, day))
    folder.mkdir(parents=True)
    (folder / "part-0.jsonl.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    (folder / "_SUCCESS").write_bytes(b"")


def _silver(settings) -> tuple[int, dict[dt.date, int]]:
    table = DeltaTable(table_uri(settings.lakehouse, SILVER_EVENTS))
    dates = delta_rows(table, columns=["event_date"]).column("event_date").to_pylist()
    return table.version(), {d: dates.count(d) for d in sorted(set(dates))}


def test_a_failed_ingest_stops_the_next_night_until_a_backfill_heals_it(spark, tmp_path):
    settings = settings_in(tmp_path, "clean.lookback_days=1", "ingest.max_lateness_days=1")
    _land(settings, NOV[0])
    _land(settings, NOV[2])
    ingest_date(spark, settings, NOV[0])
    clean_dates(spark, settings, NOV[0])
    with pytest.raises(MissingInputError, match="no landing files for 2026-11-02"):
        ingest_date(spark, settings, NOV[1])  # the night of Nov 2 fails at its ingest
    ingest_date(spark, settings, NOV[2])
    before = _silver(settings)

    with pytest.raises(BrokenPastError) as refused:
        clean_dates(spark, settings, NOV[2])
    assert str(refused.value) == (
        "clean for 2026-11-03 refused: no finished ingest run wrote 2026-11-02; no finished clean run for the nights "
        "2026-11-02. Publishing now would build on a broken day. Heal it with `seqlake run --start 2026-11-02 --end "
        '2026-11-03` (or trigger seqlake_backfill with {"start": "2026-11-02", "end": "2026-11-03"}), which reruns '
        "those nights in order"
    )
    assert refused.value.exit_status == 4
    assert _silver(settings) == before == (before[0], {NOV[0]: 12})
    with pytest.raises(BrokenPastError, match="sequences for 2026-11-03 refused: no finished clean run wrote 2026-11-02, 2026-11-03"):
        build_sequences(spark, settings, NOV[2])

    # The backfill: the missing folder lands, then the stages run over the range.
    _land(settings, NOV[1])
    ingest_date(spark, settings, NOV[1])
    clean_dates(spark, settings, NOV[1], NOV[2])
    assert _silver(settings)[1] == {NOV[0]: 12, NOV[1]: 12, NOV[2]: 12}
    healed = build_sequences(spark, settings, NOV[1], NOV[2])
    assert (healed["users"], healed["behaviors"]) == (6, 18)  # each user's click of each of the three days
