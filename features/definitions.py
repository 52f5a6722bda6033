"""The feature store's entities and views over the gold and score tables.

A view's rows are snapshots dated by a partition column. The snapshot dated A
describes the world at A + `valid_after` (UTC): the statistics "as of A" once
day A has ended, the scores of day D for the whole of D. It becomes visible
at the instant the night that built it published it (its ledger row, see
pipelines.lakehouse.publications), as it was then, and it expires `ttl`
after the instant it describes. A read at t sees, per entity, the snapshot
published last before t that has not expired - what serving read at t, and
what the training examples read (those of D, the snapshots as of D - 1 that
night D - 1 published).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping

import pyarrow as pa

from pipelines.lakehouse.tables import (
    GOLD_ITEM_STATS,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SCORES_CTR,
    TableSpec,
)

DAY = dt.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Entity:
    name: str
    join_key: str
    description: str


@dataclasses.dataclass(frozen=True)
class FeatureView:
    name: str
    entities: tuple[Entity, ...]
    source: TableSpec
    features: tuple[str, ...]
    ttl: dt.timedelta
    owner: str
    description: str
    valid_after: dt.timedelta = DAY
    # Several rows per entity and snapshot (e.g. one per BSE bucket): each
    # feature is read as the list of its values, ordered by `order_by`.
    order_by: tuple[str, ...] = ()

    @property
    def event_time(self) -> str:
        return self.source.partition_column

    @property
    def join_keys(self) -> tuple[str, ...]:
        return tuple(e.join_key for e in self.entities)

    def feature_type(self, name: str) -> pa.DataType:
        """A feature's Arrow type as a read returns it: its source column's, or
        the list of the column's values where a snapshot holds several rows per entity."""
        kind = self.source.schema.field(name).type
        return pa.list_(kind) if self.order_by else kind

    def key_type(self, join_key: str) -> pa.DataType:
        return self.source.schema.field(join_key).type

    def summary(self) -> dict[str, object]:
        """What `seqlake features list` shows of the view."""
        return {"view": self.name, "entities": list(self.join_keys), "source": self.source.name,
                "event_time": self.event_time, "ttl_hours": self.ttl / dt.timedelta(hours=1), "owner": self.owner,
                "features": list(self.features)}


user = Entity("user", "user_id", "a reader of the feed")
item = Entity("item", "item_id", "an article or product")

VIEWS: dict[str, FeatureView] = {
    view.name: view
    for view in (
        FeatureView(
            "user_sequence", (user,), GOLD_USER_SEQUENCES, ("item_ids", "category_ids", "timestamps", "length"),
            ttl=7 * DAY, owner="seqlake", description="genuine behaviors, oldest first, capped at sequences.max_len",
        ),
        FeatureView(
            "user_bse", (user,), GOLD_USER_BSE, ("version", "hash_index", "code", "count", "vector_sum"),
            ttl=7 * DAY, owner="seqlake", description="occupied BSE buckets and their embedding sums",
            order_by=("version", "hash_index", "code"),
        ),
        FeatureView(
            "user_stats", (user,), GOLD_USER_STATS, ("user_impressions", "user_clicks", "user_ctr", "user_dwell_mean_ms"),
            ttl=7 * DAY, owner="seqlake", description="genuine engagement over examples.stats_days",
        ),
        FeatureView(
            "item_stats", (item,), GOLD_ITEM_STATS,
            ("item_impressions", "item_clicks", "item_actions", "item_ctr", "item_dwell_mean_ms", "category_id"),
            ttl=7 * DAY, owner="seqlake", description="genuine engagement over examples.stats_days",
        ),
        FeatureView(
            "ctr_scores", (user, item), SCORES_CTR, ("score", "model_version"),
            ttl=DAY, owner="seqlake", description="offline CTR of the day's candidates",
            valid_after=dt.timedelta(0),
        ),
    )
}


def resolve(references: list[str]) -> dict[FeatureView, list[str]]:
    """"view:feature" references -> the features wanted of each view, in order."""
    wanted: dict[FeatureView, list[str]] = {}
    for reference in references:
        view_name, _, feature = reference.partition(":")
        if view_name not in VIEWS:
            raise ValueError(f"unknown feature view {view_name!r} in {reference!r}; known: {', '.join(VIEWS)}")
        view = VIEWS[view_name]
        names = list(view.features) if feature in ("", "*") else [feature]
        for name in names:
            if name not in view.features:
                raise ValueError(f"unknown feature {name!r} of view {view_name!r}; known: {', '.join(view.features)}")
            wanted.setdefault(view, [])
            if name not in wanted[view]:
                wanted[view].append(name)
    return wanted


def views_for(keys: Mapping[str, object]) -> list[str]:
    """The views that the given entity keys address (all their join keys among them)."""
    return [v.name for v in VIEWS.values() if set(v.join_keys) <= set(keys)]
