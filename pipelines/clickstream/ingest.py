"""Landing records -> typed bronze rows, or rejected rows with a reason.

Every landed line ends up in exactly one of the two outputs: that is the
conservation rule the ingest job checks (landed = bronze + rejected).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from pipelines.clickstream.schema import (
    BRONZE_EVENTS_SCHEMA,
    BRONZE_REJECTED_SCHEMA,
    LANDING_FIELDS,
    REQUIRED_FIELDS,
    EventType,
    RejectReason,
)
from pipelines.config import IngestSettings
from pipelines.lakehouse.forget import user_rows_sql
from pipelines.lakehouse.tables import BRONZE_EVENTS_REJECTED

_CORRUPT = "_corrupt_record"
# Every field is parsed as text first so that a value of the wrong type is
# seen (and named) instead of silently becoming null.
_TEXT_SCHEMA = T.StructType(
    [T.StructField(f.name, T.StringType()) for f in LANDING_FIELDS]
    + [T.StructField(_CORRUPT, T.StringType())]
)
_DAY_MS = 86_400_000
_BOM = "\ufeff"
_NO_LIMIT = 1 << 30
_TYPED_FIELDS = [f for f in LANDING_FIELDS if not isinstance(f.spark_type, T.StringType)]


def accepted_time_range_ms(landing_date: Column, rules: IngestSettings) -> tuple[Column, Column]:
    """[oldest, newest] event time in epoch ms that a record landing on `landing_date` may carry."""
    start_ms = F.unix_millis(F.to_timestamp(landing_date))
    oldest = start_ms - rules.max_lateness_days * _DAY_MS
    newest = start_ms + _DAY_MS + rules.max_clock_skew_minutes * 60_000
    return oldest, newest


def classified_landing_records(
    raw: DataFrame, ingest_ts: dt.datetime, rules: IngestSettings
) -> DataFrame:
    """Landing records (`raw`, `source`, `source_file`, `landing_date`, and
    `file_error` where a whole file could not be read) with typed fields,
    `reason` and `reason_detail`.

    `reason` is null for a valid record; otherwise the first violated rule in
    the order of RejectReason decides it. `raw` is kept for rejected records
    only, made valid UTF-8 (a byte that is not becomes U+FFFD) so that every
    reader of the table can read it. `unknown_fields`: the keys of the record
    that the landing contract does not name.

    Taken as written where the value is unambiguous: a number as text
    ("7"), a UTF-8 byte order mark before the record, `ts` as an ISO-8601
    time with its zone. Rejected where it is a guess: an ISO time without a
    zone, an epoch in another unit than milliseconds, an event id landed in
    the same batch with different contents (every copy).
    """
    if "file_error" not in raw.columns:
        raw = raw.withColumn("file_error", F.lit(None).cast("string"))
    # Built in stages (parse, type, judge) so that each expression is computed
    # once per row instead of being re-inlined into every rule that reads it.
    # A UTF-8 byte order mark starts the first line of a file some writers
    # save; the text after it is the record, unambiguously.
    parsed = F.when(F.startswith("raw", F.lit(_BOM)), F.substring("raw", 2, _NO_LIMIT)).otherwise(F.col("raw"))
    text = raw.select(
        "raw",
        "source",
        "source_file",
        "landing_date",
        "file_error",
        F.from_json(parsed, _TEXT_SCHEMA, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT}).alias("_j"),
        # The object's keys as written: from_json keeps the last of a key written twice.
        F.json_object_keys(parsed).alias("_keys"),
    ).select("raw", "source", "source_file", "landing_date", "file_error", "_keys", "_j.*")
    ts_text = F.col("ts")
    ts_number = ts_text.try_cast("long")
    # Looked for only where ts is no number: the pattern costs what a parse does.
    iso_ts = F.when(ts_number.isNull(), ts_text.rlike(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")).otherwise(F.lit(False))
    zoned_ts = ts_text.rlike(r"(Z|[+-]\d{2}(:?\d{2})?)$")
    typed = text.select(
        "raw",
        "source",
        "source_file",
        "landing_date",
        "file_error",
        "_keys",
        F.col(_CORRUPT),
        *[F.col(f.name).alias(f"_text_{f.name}") for f in _TYPED_FIELDS],
        iso_ts.alias("_iso_ts"),
        *[F.col(f.name).try_cast(f.spark_type).alias(f.name) for f in LANDING_FIELDS if f.name != "ts"],
        # An ISO-8601 time with its zone names one instant: taken, as epoch ms.
        F.coalesce(ts_number, F.when(iso_ts & zoned_ts, F.unix_millis(F.try_to_timestamp(ts_text)))).alias("ts"),
    )
    typed_names = {f.name for f in _TYPED_FIELDS}
    missing = F.array_compact(
        F.array(
            *[
                F.when(F.col(f"_text_{name}" if name in typed_names else name).isNull(), F.lit(name))
                for name in REQUIRED_FIELDS
            ]
        )
    )
    # An object or array where text belongs: from_json hands over its JSON as the text.
    nested_text = [
        F.when(F.col(f.name).startswith("{") | F.col(f.name).startswith("["),
               F.col("raw").rlike(f'"{f.name}"\\s*:\\s*[{{\\[]'))
        for f in LANDING_FIELDS if f.name not in typed_names
    ]
    wrong_type = F.array_compact(
        F.array(
            *[
                F.when(F.col(f"_text_{f.name}").isNotNull() & F.col(f.name).isNull()
                       & (~F.col("_iso_ts") if f.name == "ts" else F.lit(True)), F.lit(f.name))
                for f in _TYPED_FIELDS
            ],
            *[F.when(nested, F.lit(f.name)) for f, nested in zip(
                [f for f in LANDING_FIELDS if f.name not in typed_names], nested_text, strict=True)],
        )
    )
    judged = typed.select("*", missing.alias("_missing"), wrong_type.alias("_wrong_type"))

    oldest_ms, newest_ms = accepted_time_range_ms(F.col("landing_date"), rules)
    known_types = [t.value for t in EventType]
    ts, dwell = F.col("ts"), F.col("dwell_ms")
    has_nul = F.col("raw").contains("\u0000")
    unit = _other_epoch_unit(ts, oldest_ms, newest_ms)
    rules_in_order: list[tuple[RejectReason, Column, Column]] = [
        (RejectReason.UNREADABLE_FILE, F.col("file_error").isNotNull(), F.col("file_error")),
        (RejectReason.EMPTY_RECORD, F.trim("raw") == "", F.lit(None)),
        # Not UTF-8 (Latin-1, UTF-16, ...): JSON text must be; a NUL byte is
        # how UTF-16 looks read as UTF-8. Parsed, such bytes would become
        # values nobody wrote, or strings that not every reader can read.
        (RejectReason.INVALID_ENCODING, ~F.is_valid_utf8("raw") | has_nul,
         F.when(has_nul, F.lit("NUL bytes (UTF-16?)")).otherwise(F.lit("bytes that are not UTF-8"))),
        (RejectReason.OVERSIZED_RECORD, F.octet_length("raw") > rules.max_record_bytes, F.octet_length("raw")),
        (RejectReason.MALFORMED_RECORD, F.col(_CORRUPT).isNotNull(), F.lit(None)),
        # Which of the values a reader would take is a guess: none is.
        (RejectReason.DUPLICATE_KEY, F.size("_keys") != F.size(F.array_distinct("_keys")),
         F.array_join(F.array_distinct(F.filter("_keys", lambda key, i: F.array_position("_keys", key) != i + 1)), ",")),
        (RejectReason.MISSING_FIELD, F.size("_missing") > 0, F.array_join("_missing", ",")),
        (RejectReason.WRONG_TYPE, F.size("_wrong_type") > 0, F.array_join("_wrong_type", ",")),
        (RejectReason.AMBIGUOUS_TIMESTAMP, F.col("_iso_ts") & ts.isNull(), F.col("_text_ts")),
        (RejectReason.UNKNOWN_EVENT_TYPE, ~F.col("event_type").isin(known_types), F.col("event_type")),
        (RejectReason.NEGATIVE_DWELL, dwell < 0, dwell),
        (RejectReason.SCROLL_OUT_OF_RANGE, F.isnan("scroll_pct") | ~F.col("scroll_pct").between(0, 100), F.col("scroll_pct")),
        (RejectReason.WRONG_TIME_UNIT, unit.isNotNull(), unit),
        (RejectReason.FUTURE_TIMESTAMP, ts > newest_ms, ts),
        (RejectReason.STALE_TIMESTAMP, ts < oldest_ms, ts),
    ]
    reason: Column = F.lit(None).cast("string")
    detail: Column = F.lit(None).cast("string")
    for rule, violated, why in reversed(rules_in_order):
        reason = F.when(violated, F.lit(rule.value)).otherwise(reason)
        detail = F.when(violated, why.cast("string")).otherwise(detail)

    event_ts = F.timestamp_millis(ts)
    classified = judged.select(
        *[F.col(f.name) for f in LANDING_FIELDS],
        event_ts.alias("event_ts"),
        F.to_date(event_ts).alias("event_date"),
        F.col("source"),
        F.col("source_file"),
        F.lit(ingest_ts).cast("timestamp").alias("ingest_ts"),
        F.col("landing_date").cast("date"),
        reason.alias("reason"),
        detail.alias("reason_detail"),
        "raw",
        # Keys the landing contract does not know: read past, counted in the figures.
        F.array_except("_keys", F.array(*[F.lit(f.name) for f in LANDING_FIELDS])).alias("unknown_fields"),
    )
    return classified.withColumn("raw", F.when(F.col("reason").isNotNull(), F.make_valid_utf8("raw")))


def _content() -> Column:
    """A hash of a record's landing fields: equal for two copies of one event."""
    return F.xxhash64(*[F.col(f.name) for f in LANDING_FIELDS])


def conflicting_event_ids(classified: DataFrame) -> DataFrame:
    """(source, event_id, conflict) of each event id that valid records of
    `classified` carry with different contents. A copy of an event (an
    at-least-once upstream) is the same record again and passes (clean keeps
    one); an event id with two contents is a conflict neither side of which
    can be trusted. An aggregate of a few narrow columns: cheap where it runs
    on the persisted records, and almost always empty."""
    return (
        classified.where(F.col("reason").isNull())
        .groupBy("source", "event_id")
        .agg(F.min(_content()).alias("_low"), F.max(_content()).alias("_high"), F.count("*").alias("copies"))
        .where(F.col("_low") != F.col("_high"))
        .select("source", "event_id", F.format_string("%d copies that differ", "copies").alias("conflict"))
    )


def event_ids_landed_before_otherwise(classified: DataFrame, earlier: DataFrame) -> DataFrame:
    """(source, event_id, conflict) of each late event of `classified` (valid,
    of a day before its landing date) whose id `earlier` (bronze rows of the
    landing dates before) holds with other contents. The first landing was
    published and stays; the later one cannot be trusted over it. A copy the
    same as the first passes (clean keeps one). Only late events can have
    landed before, and they are few: the join reads `earlier`'s narrow columns."""
    late = classified.where(F.col("reason").isNull() & (F.col("event_date") < F.col("landing_date"))).select(
        "source", "event_id", _content().alias("_content"))
    landed = earlier.select("source", "event_id", _content().alias("_landed_content"), F.col("landing_date").alias("_landed_on"))
    return (
        late.join(landed, ["source", "event_id"])
        .where(F.col("_content") != F.col("_landed_content"))
        .groupBy("source", "event_id")
        .agg(F.min("_landed_on").alias("_first"))
        .select("source", "event_id", F.format_string("landed on %s with other contents", F.col("_first").cast("string")).alias("conflict"))
    )


def with_conflicts_rejected(classified: DataFrame, conflicts: DataFrame) -> DataFrame:
    """`classified` with every record of the `conflicts` (source, event_id,
    conflict: conflicting_event_ids, event_ids_landed_before_otherwise)
    rejected as conflicting_event_id, the conflict its detail."""
    named = conflicts.groupBy("source", "event_id").agg(F.concat_ws("; ", F.sort_array(F.collect_set("conflict"))).alias("_conflict"))
    marked = classified.join(F.broadcast(named), ["source", "event_id"], "left")
    # A valid record's raw line is not kept: its parsed fields stand for it.
    return _rejected_where(marked, F.col("_conflict").isNotNull(), RejectReason.CONFLICTING_EVENT_ID, F.col("_conflict"),
                           F.to_json(F.struct(*[f.name for f in LANDING_FIELDS])), columns=classified.columns)


def with_forgotten_users_withheld(classified: DataFrame, users: frozenset[int]) -> DataFrame:
    """`classified` with every record of `users` (pipelines.lakehouse.forget) -
    by its user_id, or for a line that did not parse, by the user_id its text
    names - rejected as forgotten_user with nothing of it kept: a late event
    of a forgotten user must not bring them back."""
    if not users:
        return classified
    theirs = F.coalesce(F.col("user_id").isin(sorted(users)), F.lit(False)) | (
        F.col("user_id").isNull() & F.coalesce(F.expr(user_rows_sql(BRONZE_EVENTS_REJECTED, sorted(users))), F.lit(False)))
    return _rejected_where(classified, theirs, RejectReason.FORGOTTEN_USER, F.lit(None), F.lit(None))


def _rejected_where(rows: DataFrame, condition: Column, reason: RejectReason, detail: Column, raw: Column,
                    columns: list[str] | None = None) -> DataFrame:
    """`rows` (its `columns`, default all) with those matching `condition`
    rejected as `reason`, their detail and raw replaced."""
    replaced = {
        "reason": F.when(condition, F.lit(reason.value)).otherwise(F.col("reason")),
        "reason_detail": F.when(condition, detail.cast("string")).otherwise(F.col("reason_detail")),
        "raw": F.when(condition, raw.cast("string")).otherwise(F.col("raw")),
    }
    return rows.select(*[replaced[c].alias(c) if c in replaced else F.col(c) for c in (columns or rows.columns)])


def _other_epoch_unit(ts: Column, oldest_ms: Column, newest_ms: Column) -> Column:
    """'seconds', 'microseconds' or 'nanoseconds' when `ts` outside [oldest_ms,
    newest_ms] would fall inside it read in that unit; null otherwise."""
    outside = (ts < oldest_ms) | (ts > newest_ms)
    unit = F.lit(None).cast("string")
    for name, per_ms in reversed((("seconds", 0.001), ("microseconds", 1000), ("nanoseconds", 1_000_000))):
        unit = F.when(outside & ts.between(oldest_ms * per_ms, newest_ms * per_ms), F.lit(name)).otherwise(unit)
    return unit


def bronze_events(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNull()).select(
        *[F.col(f.name).cast(f.dataType) for f in BRONZE_EVENTS_SCHEMA.fields]
    )


def rejected_events(classified: DataFrame) -> DataFrame:
    return classified.where(F.col("reason").isNotNull()).select(
        *[F.col(f.name).cast(f.dataType) for f in BRONZE_REJECTED_SCHEMA.fields]
    )
