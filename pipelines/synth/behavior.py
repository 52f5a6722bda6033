"""One day of behavior for one chunk of users: impressions, clicks and their truth.

Vectorized over all sessions of the chunk (no per-event Python). A human
session focuses on one or two of the user's long-lived interests; its pages
(requests) show items mostly from that focus, partly from the user's other
interests and partly popular items of any category. Clicks follow the true
click probability; reading time follows content length and the user's
reading speed. Fake interest is mixed in: accidental clicks (short, unrelated
to interests), human click bursts (rapid clicks through one page) and bots
(one long day of regular, fast clicks).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import pandas as pd

from pipelines.config import GeneratorSettings
from pipelines.synth.world import (
    ACCIDENTAL_CLICK_RATE,
    HUMAN_BURST_RATE,
    MAX_INTERESTS,
    Items,
    Users,
    sample_items_of_categories,
)

GENUINE, ACCIDENTAL, HUMAN_BURST, BOT = "genuine", "accidental", "human_burst", "bot"
# Bot pages are numbered after the humans' so that impression ids stay unique per chunk.
_BOT_REQUEST_OFFSET = 10_000_000
# Sessions start by 22:30 so that a session ends before the day's folder closes.
_LAST_SESSION_START_S = 22.5 * 3600
# Relative activity by hour of day (UTC): morning and evening peaks.
_HOURLY_ACTIVITY = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 2.6, 2.2, 1.8, 1.8,
     2.0, 1.8, 1.6, 1.6, 1.8, 2.2, 2.6, 2.8, 2.6, 2.2, 1.8, 1.2]
)
# Click model: logit = base + affinity * w + focus bonus + position slope * pos + quality.
_CLICK_BASE, _CLICK_AFFINITY, _CLICK_FOCUS, _CLICK_POSITION = -4.0, 4.0, 1.4, -0.12


def day_events(
    settings: GeneratorSettings, items: Items, users: Users, day: int, chunk: int
) -> pd.DataFrame:
    """All events of `users` on day index `day`, sorted by time, with truth columns.

    Landing columns: event_id, event_type, user_id, item_id, category_id,
    impression_id, position, ts, dwell_ms, content_length. Truth columns:
    label (genuine / accidental / human_burst / bot for clicks, None for
    impressions), click_prob (impressions: the true probability of a genuine
    click) and is_bot_user.
    """
    rng = np.random.default_rng([settings.seed, 0xDA7, day, chunk])
    day_start_ms = int(
        dt.datetime.combine(settings.start_date + dt.timedelta(days=day), dt.time(), tzinfo=dt.UTC).timestamp()
        * 1000
    )
    human = np.flatnonzero(~users.is_bot)
    bots = np.flatnonzero(users.is_bot)
    frames = [
        _human_events(settings, items, users, human, day_start_ms, rng),
        _bot_events(items, users, bots, day_start_ms, rng),
    ]
    events = pd.concat([f for f in frames if len(f)], ignore_index=True)
    events = events.sort_values(["ts", "user_id", "position"], kind="stable", ignore_index=True)
    prefix = f"{settings.seed}-{day}-{chunk}"
    events.insert(0, "event_id", [f"ev-{prefix}-{i}" for i in range(len(events))])
    events["impression_id"] = [f"im-{prefix}-{r}" for r in events["request"].to_numpy()]
    return events.drop(columns=["request"])


def _human_events(
    settings: GeneratorSettings,
    items: Items,
    users: Users,
    members: np.ndarray,
    day_start_ms: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n_sessions = rng.poisson(users.sessions_per_day[members])
    session_user = np.repeat(members, n_sessions)
    n_s = len(session_user)
    session_start_ms = day_start_ms + _session_starts_s(n_s, rng) * 1000
    focus = np.stack([_interest_of(users, session_user, rng), _interest_of(users, session_user, rng)], 1)
    # About half the sessions focus on one interest only.
    focus[:, 1] = np.where(rng.random(n_s) < 0.5, focus[:, 0], focus[:, 1])

    n_requests = 1 + rng.poisson(1.8, size=n_s)
    request_session = np.repeat(np.arange(n_s), n_requests)
    n_r = len(request_session)
    n_slots = 6 + rng.poisson(4, size=n_r)
    imp_request = np.repeat(np.arange(n_r), n_slots)
    position = _rank_in_group(n_slots)
    imp_session = request_session[imp_request]
    imp_user = session_user[imp_session]
    n_i = len(imp_request)

    source = rng.random(n_i)
    in_focus_pick = focus[imp_session, (rng.random(n_i) < 0.5).astype(int)]
    interest_pick = _interest_of(users, imp_user, rng)
    random_pick = rng.choice(len(items.category_share), size=n_i, p=items.category_share)
    category = np.where(source < 0.5, in_focus_pick, np.where(source < 0.75, interest_pick, random_pick))
    item = sample_items_of_categories(items, category, rng)
    affinity = (
        (users.interests[imp_user] == category[:, None]) * users.interest_weight[imp_user]
    ).sum(axis=1)
    in_focus = (category == focus[imp_session, 0]) | (category == focus[imp_session, 1])
    logit = (
        _CLICK_BASE
        + _CLICK_AFFINITY * affinity
        + _CLICK_FOCUS * in_focus
        + _CLICK_POSITION * position
        + items.quality[item]
    )
    click_prob = 1.0 / (1.0 + np.exp(-logit))

    noise = settings.noise_scale
    burst_request = rng.random(n_r) < min(HUMAN_BURST_RATE * noise, 1.0)
    in_burst = burst_request[imp_request]
    genuine = ~in_burst & (rng.random(n_i) < click_prob)
    accidental = ~in_burst & ~genuine & (rng.random(n_i) < min(ACCIDENTAL_CLICK_RATE * noise, 1.0))
    burst = in_burst & (rng.random(n_i) < 0.7)
    clicked = genuine | accidental | burst
    label = np.select([genuine, accidental, burst], [GENUINE, ACCIDENTAL, HUMAN_BURST], "")

    # Time: each page is scanned, then its clicks happen in order of position,
    # each one a short reach-for-it gap plus the read (dwell) before the next.
    c = np.flatnonzero(clicked)
    c_request = imp_request[c]
    n_c = len(c)
    dwell_s = np.empty(n_c)
    genuine_c, accidental_c, burst_c = genuine[c], accidental[c], burst[c]
    dwell_s[genuine_c] = (
        items.content_length[item[c][genuine_c]]
        / users.reading_speed[imp_user[c][genuine_c]]
        * rng.lognormal(0.0, 0.35, size=genuine_c.sum())
    )
    dwell_s[accidental_c] = rng.lognormal(np.log(2.0), 0.45, size=accidental_c.sum())
    dwell_s[burst_c] = rng.lognormal(np.log(0.9), 0.4, size=burst_c.sum())
    dwell_ms = np.clip(dwell_s * 1000, 200, 1_800_000).astype(np.int64)
    gap_ms = np.where(
        burst_c, rng.lognormal(np.log(500), 0.3, n_c), rng.lognormal(np.log(1500), 0.4, n_c)
    ).astype(np.int64)
    step_ms = gap_ms + dwell_ms
    click_offset_ms = _grouped_cumsum(step_ms, c_request) - dwell_ms

    scan_ms = rng.lognormal(np.log(4000), 0.5, size=n_r).astype(np.int64)
    request_ms = scan_ms + np.bincount(c_request, weights=step_ms, minlength=n_r).astype(np.int64)
    request_ms += rng.lognormal(np.log(3000), 0.5, size=n_r).astype(np.int64)
    request_start_ms = session_start_ms[request_session] + _grouped_cumsum(request_ms, request_session) - request_ms

    page = _Page(users.user_id[imp_user], item, category, imp_request, position, request_start_ms[imp_request])
    clicked_ts = request_start_ms[c_request] + scan_ms[c_request] + click_offset_ms
    return _page_events(
        items, page, c, clicked_ts, pd.array(dwell_ms, dtype="Int64"), label[c], click_prob, is_bot=False
    )


def _bot_events(
    items: Items, users: Users, members: np.ndarray, day_start_ms: int, rng: np.random.Generator
) -> pd.DataFrame:
    """A crawler: one long run of pages, clicking about half of each page at a steady pace."""
    if len(members) == 0:
        return pd.DataFrame()
    n_requests = rng.integers(15, 40, size=len(members))
    request_bot = np.repeat(members, n_requests)
    n_r = len(request_bot)
    slots = 8
    imp_request = np.repeat(np.arange(n_r), slots)
    position = np.tile(np.arange(slots), n_r)
    imp_user = request_bot[imp_request]
    n_i = len(imp_request)
    category = rng.choice(len(items.category_share), size=n_i, p=items.category_share)
    item = sample_items_of_categories(items, category, rng)
    clicked = rng.random(n_i) < 0.5
    period_ms = rng.lognormal(np.log(1500), 0.1, size=len(members))
    bot_rank = np.searchsorted(members, imp_user)
    c = np.flatnonzero(clicked)
    c_request = imp_request[c]
    step_ms = (period_ms[bot_rank[c]] * rng.normal(1.0, 0.03, len(c))).astype(np.int64)
    click_offset_ms = _grouped_cumsum(step_ms, c_request)
    request_ms = np.bincount(c_request, weights=step_ms, minlength=n_r).astype(np.int64) + 500
    start_ms = day_start_ms + _session_starts_s(len(members), rng) * 1000
    request_start_ms = (
        start_ms[np.repeat(np.arange(len(members)), n_requests)]
        + _grouped_cumsum(request_ms, np.repeat(np.arange(len(members)), n_requests))
        - request_ms
    )
    # Crawlers often report no dwell at all.
    reported = rng.random(len(c)) < 0.5
    dwell = pd.array(np.where(reported, step_ms - 100, 0), dtype="Int64")
    dwell[~reported] = pd.NA
    page = _Page(
        users.user_id[imp_user], item, category, imp_request + _BOT_REQUEST_OFFSET, position,
        request_start_ms[imp_request],
    )
    clicked_ts = request_start_ms[c_request] + 300 + click_offset_ms
    return _page_events(items, page, c, clicked_ts, dwell, BOT, np.nan, is_bot=True)


@dataclasses.dataclass(frozen=True)
class _Page:
    """One row per impression slot shown (item indices, not ids)."""

    user_id: np.ndarray
    item: np.ndarray
    category: np.ndarray
    request: np.ndarray
    position: np.ndarray
    shown_ms: np.ndarray


def _page_events(
    items: Items,
    page: _Page,
    clicked: np.ndarray,
    clicked_ts: np.ndarray,
    dwell_ms: pd.api.extensions.ExtensionArray,
    click_label: np.ndarray | str,
    click_prob: np.ndarray | float,
    is_bot: bool,
) -> pd.DataFrame:
    """The impression events of every slot, then the click events of the `clicked` slots."""

    def events(rows: np.ndarray | slice, event_type: str, ts, dwell, label, prob) -> pd.DataFrame:
        item = page.item[rows]
        return pd.DataFrame(
            {
                "event_type": event_type,
                "user_id": page.user_id[rows],
                "item_id": item + 1,
                "category_id": page.category[rows].astype(np.int32),
                "request": page.request[rows],
                "position": page.position[rows].astype(np.int32),
                "ts": ts,
                "dwell_ms": dwell,
                "content_length": items.content_length[item],
                "label": label,
                "click_prob": prob,
                "is_bot_user": is_bot,
            }
        )

    shown = len(page.item)
    impressions = events(
        slice(None), "impression", page.shown_ms + 20 * page.position,
        pd.array([None] * shown, dtype="Int64"), None, click_prob,
    )
    clicks = events(clicked, "click", clicked_ts, dwell_ms, click_label, np.nan)
    return pd.concat([impressions, clicks], ignore_index=True)


def _session_starts_s(n: int, rng: np.random.Generator) -> np.ndarray:
    weights = _HOURLY_ACTIVITY / _HOURLY_ACTIVITY.sum()
    seconds = (rng.choice(24, size=n, p=weights) + rng.random(n)) * 3600
    return np.minimum(seconds, _LAST_SESSION_START_S).astype(np.int64)


def _interest_of(users: Users, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of each row's user's interests, drawn by interest weight."""
    cum = np.cumsum(users.interest_weight[rows], axis=1)
    slot = (cum < rng.random(len(rows))[:, None]).sum(axis=1)
    n_active = (users.interests[rows] >= 0).sum(axis=1)
    slot = np.minimum(slot, n_active - 1, out=slot)
    return users.interests[rows, np.minimum(slot, MAX_INTERESTS - 1)]


def _rank_in_group(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ... within each consecutive group of the given sizes."""
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.arange(sizes.sum()) - starts


def _grouped_cumsum(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Inclusive cumulative sum restarting at each group (groups sorted, contiguous)."""
    if len(values) == 0:
        return values.astype(np.int64)
    total = np.cumsum(values)
    first = np.r_[True, groups[1:] != groups[:-1]]
    base = (total - values)[first]
    return total - np.repeat(base, np.diff(np.r_[np.flatnonzero(first), len(values)]))
