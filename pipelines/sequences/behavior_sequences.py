"""Per-user behavior sequences: genuine behaviors in time order, newest last, capped.

A snapshot as of D holds, per user, everything genuine up to D. The clean
stage rewrites the event dates of its look-back window [D-L, D] each night
(late events), so this stage rewrites the snapshots of the same dates, each
snapshot(d) = cap(snapshot(D-L-1) ++ genuine behaviors of (D-L-1, d]). The
base snapshot(D-L-1) was written the night before, when its dates were
already final; the result therefore equals a full rebuild from silver.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.clickstream.schema import EventType

BEHAVIORS = (EventType.CLICK, EventType.CART, EventType.FAV, EventType.BUY)
# Field of the sequence -> silver column it is taken from.
SEQUENCE_FIELDS = {
    "item_ids": "item_id",
    "category_ids": "category_id",
    "timestamps": "ts",
    "dwell_ms": "dwell_ms",
    "actions": "event_type",
}


def genuine_behaviors(silver: DataFrame) -> DataFrame:
    """Behaviors (clicks and e-commerce actions) not flagged as noise."""
    return silver.where(
        F.col("noise_reason").isNull() & F.col("event_type").isin([b.value for b in BEHAVIORS])
    )


def sequences_of(behaviors: DataFrame, *keys: str) -> DataFrame:
    """Per `keys` (a user, or a user and date), the behaviors as parallel arrays
    in time order (ties by event id)."""
    ordered = F.array_sort(
        F.collect_list(F.struct("ts", "event_id", *[F.col(c).alias(f) for f, c in SEQUENCE_FIELDS.items()]))
    )
    return behaviors.groupBy(*keys).agg(ordered.alias("_b")).select(
        *keys, *[F.col(f"_b.{field}").alias(field) for field in SEQUENCE_FIELDS]
    )


def base_snapshot_date(first: dt.date) -> dt.date:
    """The snapshot an incremental run starts from: the day before the dates it rewrites."""
    return first - dt.timedelta(days=1)


def snapshots(silver: DataFrame, base: DataFrame | None, first: dt.date, last: dt.date, max_len: int) -> DataFrame:
    """Snapshots as of [first, last] from `base` (the snapshot of the day before
    `first`, or None for a full build) and the genuine behaviors of silver after it."""
    since = F.col("event_date") > F.lit(base_snapshot_date(first)) if base is not None else F.lit(True)
    behaviors = genuine_behaviors(silver.where(since & (F.col("event_date") <= F.lit(last))))
    return window_snapshots(base, behaviors, first, last, max_len)


def window_snapshots(
    base: DataFrame | None, behaviors: DataFrame, first: dt.date, last: dt.date, max_len: int
) -> DataFrame:
    """Snapshots as of each date in [first, last]: cap(base ++ behaviors up to that date).

    `behaviors` all happened after `base`'s. A user without new behaviors
    carries over unchanged; a user appears from the first date with any.
    """
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    per_day = sequences_of(behaviors, "user_id", "event_date")
    new = per_day.groupBy("user_id").agg(
        F.collect_list(F.struct("event_date", *SEQUENCE_FIELDS)).alias("_days")
    )
    types = {f: per_day.schema[f].dataType for f in SEQUENCE_FIELDS}
    if base is None:
        merged = new.select("user_id", "_days", *[F.array().cast(types[f]).alias(f"_base_{f}") for f in SEQUENCE_FIELDS])
    else:
        old = base.select("user_id", *[F.col(f).alias(f"_base_{f}") for f in SEQUENCE_FIELDS])
        merged = old.join(new, "user_id", "full_outer")

    def as_of(day: dt.date) -> Column:
        upto = F.array_sort(
            F.filter(F.coalesce("_days", F.array()), lambda d: d["event_date"] <= F.lit(day)),
            lambda a, b: F.when(a["event_date"] < b["event_date"], -1).when(a["event_date"] > b["event_date"], 1).otherwise(0),
        )
        fields = {
            f: _newest(
                F.concat(
                    F.coalesce(F.col(f"_base_{f}"), F.array().cast(types[f])),
                    F.flatten(F.transform(upto, _field(f))),
                ),
                max_len,
            )
            for f in SEQUENCE_FIELDS
        }
        return F.struct(F.lit(day).alias("as_of_date"), *[c.alias(f) for f, c in fields.items()])

    snapshots = merged.select("user_id", F.explode(F.array(*[as_of(d) for d in days])).alias("_s"))
    return snapshots.select(
        "user_id",
        *[F.col(f"_s.{f}").alias(f) for f in SEQUENCE_FIELDS],
        F.size("_s.item_ids").alias("length"),
        F.col("_s.as_of_date").alias("as_of_date"),
    ).where(F.col("length") > 0)


def _field(name: str):
    # Spark reads a lambda's parameters as (element[, index]): no default arguments.
    return lambda element: element[name]


def _newest(values: Column, max_len: int) -> Column:
    size = F.size(values)
    return F.when(size > max_len, F.slice(values, size - max_len + 1, F.lit(max_len))).otherwise(values)


def sequence_summary(snapshot: DataFrame) -> dict[str, object]:
    """Users, behaviors and the length distribution of one as-of date's snapshot."""
    stats = snapshot.agg(
        F.count("*").alias("users"),
        F.sum("length").alias("behaviors"),
        F.percentile_approx("length", [0.5, 0.9, 0.99]).alias("p"),
        F.max("length").alias("max"),
    ).first()
    return {
        "users": stats["users"],
        "behaviors": stats["behaviors"] or 0,
        "length_p50_p90_p99_max": [*(stats["p"] or [0, 0, 0]), stats["max"] or 0],
    }
