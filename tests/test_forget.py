"""`seqlake forget --user U`: the user's rows leave every table at once, every
reader of the versions kept for time travel leaves them out, VACUUM removes
them from history, the request is audited and the models trained on their
data are named in the registry."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from pathlib import Path

import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError
from pyspark.sql import functions as F

from features.definitions import views_for
from features.store import FeatureReader, latest_features
from jobs.cli import invoke
from pipelines.clickstream.landing import landing_folder
from pipelines.ctr.registry import log_and_register, model_versions
from pipelines.lakehouse.files import delta_dataset
from pipelines.lakehouse.forget import USER_TABLES, data_ranges_holding, requests, user_rows_sql
from pipelines.lakehouse.publications import publications
from pipelines.lakehouse.tables import (
    BRONZE_EVENTS_REJECTED,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_STATS,
    table_uri,
)
from pipelines.lakehouse.writes import read_published, read_table
from pipelines.stages.ingest import ingest_date
from pipelines.stages.sequences import build_sequences
from tests.conftest import settings_in

COMMON = ("ingest.max_lateness_days=1", "clean.lookback_days=1", "sequences.retention_days=2", "sequences.max_len=40",
          "examples.train_len=32")


def test_a_rejected_line_is_the_users_when_its_user_id_names_them_as_number_or_text(spark):
    lines = [
        '{"user_id": 7, "ts": "x"}', '{"user_id":"7"}', '{"event_id": "a", "user_id" : 7', '{"user_id": 70}',
        '{"user_id": 17}', '{"user_id": 7.5}', '{"other_id": 7}', None,
    ]
    frame = spark.createDataFrame([(line,) for line in lines], "raw string")
    got = [r["raw"] for r in frame.where(user_rows_sql(BRONZE_EVENTS_REJECTED, [7, 3])).collect()]
    assert got == lines[:3]
    assert user_rows_sql(GOLD_USER_STATS, [7, 3, 7]) == "user_id IN (3, 7)"


def test_the_models_trained_on_a_users_data_are_those_whose_data_range_holds_one_of_their_dates():
    ranges = [("3", "2026-11-02..2026-11-08"), ("2", "2026-10-20..2026-10-26"), ("1", None)]
    assert data_ranges_holding(ranges, [dt.date(2026, 11, 8), dt.date(2026, 11, 20)]) == ["3"]
    assert data_ranges_holding(ranges, [dt.date(2026, 10, 26), dt.date(2026, 11, 2)]) == ["3", "2"]
    assert data_ranges_holding(ranges, []) == []


@pytest.fixture(scope="module")
def recent_nights(spark, tmp_path_factory):
    """Two generated days that ended yesterday (so that the feature store still
    serves what their nights published), run by every Spark stage."""
    from pipelines.stages.clean import clean_dates
    from pipelines.stages.examples import build_examples
    from pipelines.stages.ingest import ingest_date
    from pipelines.stages.signatures import build_signatures
    from pipelines.synth.generate import generate

    start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=2)
    settings = settings_in(tmp_path_factory.mktemp("forget"), *COMMON, "generator.users=200", "generator.days=2",
                           "generator.workers=1", f"generator.start_date={start}")
    generate(settings.generator, settings.landing, settings.truth)
    days = [start, start + dt.timedelta(days=1)]
    for day in days:
        ingest_date(spark, settings, day)
        clean_dates(spark, settings, day)
        build_sequences(spark, settings, day)
        build_signatures(spark, settings, day)
        build_examples(spark, settings, day)
    return settings, days


def _landed_lines(settings, day) -> list[str]:
    folder = Path(landing_folder(settings.landing, day))
    return [line for f in sorted(folder.glob("*.jsonl.gz")) for line in gzip.decompress(f.read_bytes()).decode().splitlines()]


def _users_rows(settings, users) -> dict[str, int]:
    """Rows of `users` in each user table's current version, read with delta-rs and pyarrow."""
    found = {}
    for table in USER_TABLES:
        try:
            found[table.name] = _rows_in(DeltaTable(table_uri(settings.lakehouse, table)), table, users)
        except TableNotFoundError:  # the nights write no scores or evaluations
            continue
    return found


def _rows_in(delta: DeltaTable, table, users) -> int:
    rows = delta_dataset(delta).to_table(columns=["raw" if table is BRONZE_EVENTS_REJECTED else "user_id"])
    if table is BRONZE_EVENTS_REJECTED:
        pattern = re.compile(r'"user_id"\s*:\s*"?(' + "|".join(map(str, users)) + r")(?![0-9.eE])")
        return sum(1 for raw in rows.column("raw").to_pylist() if raw and pattern.search(raw))
    return pc.sum(pc.is_in(rows.column("user_id"), value_set=pc.cast(users, "int64"))).as_py() or 0


def test_forgetting_users_removes_them_from_every_table_reader_and_retained_version(spark, recent_nights, tmp_path):
    settings, days = recent_nights
    lakehouse = settings.lakehouse
    # A user with rejected lines and training examples, and the most active one.
    rejected_user = (read_table(spark, lakehouse, BRONZE_EVENTS_REJECTED)
                     .select(F.get_json_object("raw", "$.user_id").try_cast("long").alias("u")).where("u IS NOT NULL")
                     .groupBy("u").count().orderBy(F.desc("count"), "u").first()["u"])
    examples = read_table(spark, lakehouse, GOLD_TRAINING_EXAMPLES)
    busiest = examples.where(F.col("user_id") != rejected_user).groupBy("user_id").count().orderBy(F.desc("count"), "user_id").first()[0]
    kept = examples.where(~F.col("user_id").isin(rejected_user, busiest)).select("user_id").first()[0]
    users = [rejected_user, busiest]
    before = _users_rows(settings, users)
    assert before[BRONZE_EVENTS_REJECTED.name] > 0 and all(before[t] > 0 for t in (
        "bronze/events", "silver/events", "gold/user_sequences", "gold/user_stats", "gold/user_bse", "gold/training_examples"))
    first_day, last_day = days[0], days[-1]
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    trained = log_and_register(settings, "trained-on-them", {}, [], {}, model_dir, {"model": "din", "data_range": f"{first_day}..{last_day}"})
    older = log_and_register(settings, "trained-before", {}, [], {}, model_dir, {"model": "din", "data_range": "2020-01-01..2020-01-07"})
    reader = FeatureReader(lakehouse)
    features = views_for({"user_id": [busiest]})
    assert any(v is not None for k, v in reader.latest({"user_id": [busiest]}, features).to_pylist()[0].items() if k != "user_id")

    figures = invoke("forget", ["--user", str(rejected_user), "--user", str(busiest), "--by", "dpo@example.org"], settings)

    assert figures["rows_deleted"] == {name: n for name, n in before.items() if n}
    assert figures["models_trained_on_them"] == [trained["version"]]
    # The current version of every table: no row of theirs.
    assert set(_users_rows(settings, users).values()) == {0}
    # The versions kept for time travel still hold them (720 h): no reader serves them.
    stats_published = publications(lakehouse, GOLD_USER_STATS)
    assert read_published(spark, lakehouse, GOLD_USER_STATS, stats_published).where(F.col("user_id").isin(users)).count() == 0
    assert read_published(spark, lakehouse, GOLD_USER_STATS, stats_published).where(F.col("user_id") == kept).count() > 0
    old = DeltaTable(table_uri(lakehouse, GOLD_USER_STATS), version=stats_published[-1].table_version)
    assert _rows_in(old, GOLD_USER_STATS, users) > 0
    for read in (reader.latest, lambda keys, refs: latest_features(lakehouse, keys, refs)):  # a reader open before, and a new one
        row = read({"user_id": [busiest]}, features).to_pylist()[0]
        assert all(v is None for k, v in row.items() if k != "user_id"), row
        assert any(v is not None for k, v in read({"user_id": [kept]}, features).to_pylist()[0].items() if k != "user_id")
    # Audited: who asked, when, which users, the version each delete committed.
    (audit,) = requests(lakehouse)
    assert (audit["requested_by"], sorted(audit["user_ids"]), dict(audit["rows_deleted"])) == (
        "dpo@example.org", sorted(users), figures["rows_deleted"])
    assert set(dict(audit["table_versions"])) == set(figures["rows_deleted"])
    for name, version in dict(audit["table_versions"]).items():
        (commit,) = [c for c in DeltaTable(f"{lakehouse}/{name}").history() if c["version"] == version]
        assert (commit["operation"], commit["userMetadata"]) == ("DELETE", f"seqlake forget {figures['request_id']}")
    assert audit["history_retention_hours"] == 720 and list(audit["model_versions"]) == [trained["version"]]
    tagged = {v.version: v.tags.get("forget_requests") for v in model_versions(settings)}
    assert tagged == {trained["version"]: figures["request_id"], older["version"]: None}
    # The night goes on after the foreign commits; a redelivered landing folder
    # does not bring them back: their lines are counted, nothing of them kept.
    redelivered = ingest_date(spark, settings, first_day)
    assert redelivered["rejected_by_reason"]["forgotten_user"] == sum(
        1 for line in _landed_lines(settings, first_day) if re.search(r'"user_id":\s*"?(' + f"{rejected_user}|{busiest}" + r")(?![0-9.eE])", line))
    build_sequences(spark, settings, last_day)
    assert set(_users_rows(settings, users).values()) == {0}
    assert read_table(spark, lakehouse, BRONZE_EVENTS_REJECTED).where("reason = 'forgotten_user' AND raw IS NOT NULL").count() == 0

    # A request with no retention left: VACUUM removes every file only older versions need.
    again = invoke("forget", ["--user", str(busiest), "--set", "forget.history_retention_hours=0"], settings)
    assert again["rows_deleted"] == {} and again["purged_from_history_by"] <= dt.datetime.now(dt.UTC).isoformat(" ")
    retained = 0
    for table in USER_TABLES:
        uri = table_uri(lakehouse, table)
        try:
            latest = DeltaTable(uri).version()
        except TableNotFoundError:
            continue
        for version in range(latest + 1):
            try:
                rows = _rows_in(DeltaTable(uri, version=version), table, users)
            except OSError:  # a version whose files VACUUM removed: no longer retained
                continue
            retained += 1
            assert rows == 0, (table.name, version)
    assert retained >= len(figures["rows_deleted"])
    assert len(requests(lakehouse)) == 2
