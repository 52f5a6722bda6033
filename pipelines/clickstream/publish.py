"""Publishing landing records to bronze: classify, check ownership, replace, verify, record.

One path for the nightly ingest of a landing folder and for imports of public
datasets. Every bronze and rejected row carries its `source`; a publish
replaces only rows of its own source (a landing date for the nightly ingest,
the whole source for an import) and refuses, before writing anything, when a
partition it would write already holds rows of another source. After both
commits it checks landed = bronze + rejected on what the tables hold, then
appends its ledger row: a run that died between the two commits has no ledger
row, which `unfinished_ingests` reports and the rerun heals.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.storagelevel import StorageLevel

from pipelines.clickstream.ingest import (
    bronze_events,
    classified_landing_records,
    conflicting_event_ids,
    event_ids_landed_before_otherwise,
    rejected_events,
    with_conflicts_rejected,
    with_forgotten_users_withheld,
)
from pipelines.config import IngestSettings
from pipelines.errors import ConservationError, IncompleteRunError, OwnershipError
from pipelines.lakehouse.forget import forgotten_users
from pipelines.lakehouse.ledger import Run, finished_writes, now_utc, record_run
from pipelines.lakehouse.tables import BRONZE_EVENTS, BRONZE_EVENTS_REJECTED
from pipelines.lakehouse.writes import read_table, replace_where, table_exists
from pipelines.quality.gate import EveryDate, audit_and_publish, published_volumes
from pipelines.quality.suites import bronze_events_suite

INGEST_STAGE = "ingest"
_MAX_DATES_NAMED = 5


@dataclasses.dataclass(frozen=True)
class PublishScope:
    """What a publish owns: its source's rows, on one landing date or on every date."""

    source: str
    landing_date: dt.date | None = None

    def predicate(self) -> str:
        own = f"source = '{self.source}'"
        return own if self.landing_date is None else f"{own} AND landing_date = DATE'{self.landing_date}'"

    def rows(self) -> Column:
        own = F.col("source") == self.source
        return own if self.landing_date is None else own & (F.col("landing_date") == F.lit(self.landing_date))


def import_landing_dates(records: DataFrame, now: dt.datetime, rules: IngestSettings) -> DataFrame:
    """Imported records with the landing date of their own event time.

    A record without a usable time (none, not a number, or in the future)
    cannot be dated by itself: it is put on the import's oldest date (newest,
    for a future one), where ingest's rules reject it with its reason, so it
    stays inside the partitions this import owns. Raises ValueError when no
    record has a usable time.
    """
    ts_ms = F.get_json_object("raw", "$.ts").try_cast("long")
    newest_allowed_ms = int(now.replace(tzinfo=dt.UTC).timestamp() * 1000) + rules.max_clock_skew_minutes * 60_000
    event_date = F.to_date(F.timestamp_millis(ts_ms))
    usable = ts_ms.isNotNull() & (ts_ms <= newest_allowed_ms)
    dated = records.select("*", ts_ms.alias("_ts_ms"), event_date.alias("_event_date"), usable.alias("_usable"))
    oldest, newest = dated.where("_usable").agg(F.min("_event_date"), F.max("_event_date")).first()
    if oldest is None:
        raise ValueError("no record has a usable event time (ts): nothing to date the import by")
    landing_date = (
        F.when(F.col("_usable"), F.col("_event_date"))
        .when(F.col("_ts_ms") > newest_allowed_ms, F.lit(newest))
        .otherwise(F.lit(oldest))
    )
    return dated.withColumn("landing_date", landing_date).drop("_ts_ms", "_event_date", "_usable")


def publish_landing_records(
    spark: SparkSession,
    lakehouse: str,
    records: DataFrame,
    scope: PublishScope,
    rules: IngestSettings,
    job: str,
    history_days: int,
    files: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """Classify `records` (raw, source_file, landing_date), replace `scope`'s rows of
    bronze/events and bronze/events_rejected with them, verify and record the run.

    A nightly landing date is held to the volume band of the source's landing
    dates in the `history_days` before it (an import, to its suite only).
    Returns landed, bronze, rejected, rejected_by_reason, landing_dates,
    healed (true when the rows replaced were left by a run that did not finish),
    unknown_fields (records per key the contract does not name) and `files`,
    the figures of how the records' files were read.
    """
    started = now_utc()
    classified = with_forgotten_users_withheld(classified_landing_records(
        records.withColumn("source", F.lit(scope.source)), started.replace(tzinfo=dt.UTC), rules
    ), forgotten_users(lakehouse)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        landed = classified.count()
        conflicts = conflicting_event_ids(classified)
        if scope.landing_date is not None and table_exists(spark, lakehouse, BRONZE_EVENTS):
            conflicts = conflicts.unionByName(event_ids_landed_before_otherwise(
                classified, earlier_landings(spark, lakehouse, scope.source, scope.landing_date, rules.max_lateness_days)))
        # Persisted: the look-up in earlier landings runs once, whether or not it finds any.
        conflicts = conflicts.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            if conflicts.first() is not None:
                judged = with_conflicts_rejected(classified, conflicts).persist(StorageLevel.MEMORY_AND_DISK)
                judged.count()
                classified.unpersist()
                classified = judged
        finally:
            conflicts.unpersist()
        unknown_fields = {r["field"]: r["count"] for r in classified.select(F.explode("unknown_fields").alias("field"))
                          .groupBy("field").count().orderBy("field").collect()}
        dates = sorted(r[0] for r in classified.select("landing_date").distinct().collect())
        _check_ownership(spark, lakehouse, scope, dates)
        healed = bool(unfinished_ingests(spark, lakehouse, scope.rows()))
        if landed:
            volumes = [] if scope.landing_date is None else published_volumes(
                spark, lakehouse, BRONZE_EVENTS, scope.landing_date, history_days, rows=f"source = '{scope.source}'")
            suite = bronze_events_suite(rules.max_lateness_days, rules.max_clock_skew_minutes, scope.landing_date, volumes)
            # An import replaces all its source's rows: a date its new file no longer holds is gone by right.
            audit_and_publish(spark, bronze_events(classified), lakehouse, BRONZE_EVENTS, scope.predicate(), suite, dates[0], dates[-1],
                              empty_by_right=EveryDate() if scope.landing_date is None else frozenset())
            replace_where(rejected_events(classified), lakehouse, BRONZE_EVENTS_REJECTED, scope.predicate())
    finally:
        classified.unpersist()

    bronze_rows = read_table(spark, lakehouse, BRONZE_EVENTS).where(scope.rows()).count() if landed else 0
    rejected_by_reason = {
        row["reason"]: row["count"]
        for row in read_table(spark, lakehouse, BRONZE_EVENTS_REJECTED).where(scope.rows())
        .groupBy("reason").count().orderBy("reason").collect()
    } if landed else {}
    rejected = sum(rejected_by_reason.values())
    if landed != bronze_rows + rejected:
        raise ConservationError(
            f"{scope.predicate()}: landed {landed} != bronze {bronze_rows} + rejected {rejected}"
        )
    figures: dict[str, object] = {
        "source": scope.source,
        "landed": landed,
        "bronze": bronze_rows,
        "rejected": rejected,
        "rejected_by_reason": rejected_by_reason,
        "landing_dates": f"{dates[0]}..{dates[-1]}" if dates else "",
        "healed": healed,
        "unknown_fields": unknown_fields,
        **(files or {}),
    }
    if landed:
        run = Run(
            stage=INGEST_STAGE, dates=dates, started_at=started, source=scope.source, written_ts=started,
            tables=(BRONZE_EVENTS, BRONZE_EVENTS_REJECTED),
        )
        record_run(lakehouse, run, {"job": job, **figures})
    return figures


def earlier_landings(spark: SparkSession, lakehouse: str, source: str, day: dt.date, lateness_days: int) -> DataFrame:
    """The bronze rows of `source` landed in the `lateness_days` before `day`:
    where a late event of `day` may have landed before (an older one is stale)."""
    return read_table(spark, lakehouse, BRONZE_EVENTS).where(
        (F.col("source") == source) & F.col("landing_date").between(F.lit(day - dt.timedelta(days=lateness_days)), F.lit(day - dt.timedelta(days=1))))


def unfinished_ingests(spark: SparkSession, lakehouse: str, rows: Column) -> list[tuple[str, dt.date]]:
    """(source, landing date) of the bronze rows matching `rows` that a run wrote
    without finishing (no ledger row for their ingest_ts): a crash between commits."""
    if not table_exists(spark, lakehouse, BRONZE_EVENTS):
        return []
    written = (
        read_table(spark, lakehouse, BRONZE_EVENTS)
        .where(rows)
        .select("source", F.col("landing_date").alias("date"), F.unix_micros("ingest_ts").alias("written_us"))
        .distinct()
    )
    unfinished = written.join(finished_writes(spark, lakehouse, INGEST_STAGE), ["source", "date", "written_us"], "left_anti")
    return sorted((r["source"], r["date"]) for r in unfinished.select("source", "date").distinct().collect())


def require_finished_ingests(spark: SparkSession, lakehouse: str, rows: Column) -> None:
    """Raise IncompleteRunError when bronze rows matching `rows` come from an unfinished ingest."""
    unfinished = unfinished_ingests(spark, lakehouse, rows)
    if unfinished:
        named = ", ".join(f"{source} {day}" for source, day in unfinished[:_MAX_DATES_NAMED])
        more = f" and {len(unfinished) - _MAX_DATES_NAMED} more" if len(unfinished) > _MAX_DATES_NAMED else ""
        raise IncompleteRunError(
            f"bronze holds the writes of an ingest that did not finish ({named}{more}): "
            "rerun that ingest or import, then this job"
        )


def _check_ownership(spark: SparkSession, lakehouse: str, scope: PublishScope, dates: list[dt.date]) -> None:
    if not dates:
        return
    others = []
    for table in (BRONZE_EVENTS, BRONZE_EVENTS_REJECTED):
        if not table_exists(spark, lakehouse, table):
            continue
        others += (
            read_table(spark, lakehouse, table)
            .where(F.col("landing_date").isin(dates) & (F.col("source") != scope.source))
            .select("source", "landing_date")
            .distinct()
            .collect()
        )
    if others:
        sources = sorted({r["source"] for r in others})
        taken = sorted({r["landing_date"] for r in others})
        named = ", ".join(str(d) for d in taken[:_MAX_DATES_NAMED]) + (" ..." if len(taken) > _MAX_DATES_NAMED else "")
        raise OwnershipError(
            f"source {scope.source!r} would write landing dates ({named}) that hold rows of "
            f"{', '.join(repr(s) for s in sources)}; nothing was written. Import into a lakehouse "
            "of its own (--lakehouse) or under dates no other source uses"
        )
