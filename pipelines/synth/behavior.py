"""One day of behavior for one chunk of users: impressions, clicks and their truth.

Vectorized over all sessions of the chunk (no per-event Python). A human
session focuses on one or two of the user's long-lived interests; its pages
(requests) show distinct items, mostly from that focus, partly from the user's
other interests and partly popular items of any category. Clicks follow the
true click probability; a genuine read lasts the item's own typical read time
times the user's speed factor times a wide per-read factor, and some genuine
reads last about 0 s (see `world`).

Fake interest is mixed in, overlapping genuine behavior on purpose:
accidental clicks, mostly near the top of the page, that last about as long as
a genuine glance; human multi-tab bursts (several slots of a page opened
within a second or two); and bots of two kinds: scrapers that walk pages at a
noisy but steady rhythm, and human-like bots whose gaps and dwell look human
but whose volume and click-through do not.
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
    READ_SIGMA,
    ZERO_READ_SHARE,
    Items,
    UserKind,
    Users,
    distinct_page_items,
    drift_step,
    interest_log_weights,
    normalized,
)

GENUINE, ACCIDENTAL, HUMAN_BURST, BOT = "genuine", "accidental", "human_burst", "bot"
# Bot pages are numbered after the humans' so that impression ids stay unique per chunk.
_BOT_REQUEST_OFFSET = 10_000_000
_DAY_MS = 86_400_000
# Sessions start by 22:30 so that a session ends before the day's folder closes.
_LAST_SESSION_START_S = 22.5 * 3600
# Relative activity by hour of day (UTC): morning and evening peaks.
_HOURLY_ACTIVITY = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.2, 2.6, 2.2, 1.8, 1.8,
     2.0, 1.8, 1.6, 1.6, 1.8, 2.2, 2.6, 2.8, 2.6, 2.2, 1.8, 1.2]
)
# Click model: logit = base + affinity * w + focus bonus + position slope * pos + quality.
_CLICK_BASE, _CLICK_AFFINITY, _CLICK_FOCUS, _CLICK_POSITION = -4.0, 4.0, 1.4, -0.12
# Where a page's slots come from: the session's focus, the user's standing
# interests (by weight), or any category (by popularity).
_FOCUS_SHARE, _INTEREST_SHARE = 0.5, 0.25
_RANDOM_SHARE = 1 - _FOCUS_SHARE - _INTEREST_SHARE
# Draws of the day's interest step that the nightly-information probability averages over.
_NIGHTLY_SAMPLES = 32
# Accidental clicks fall off with the slot: weight exp(-position / decay), scaled
# so that a page of ten slots averages the configured rate.
_ACCIDENTAL_DECAY_SLOTS = 3.0
_ACCIDENTAL_SCALE = 10 * (1 - np.exp(-1 / _ACCIDENTAL_DECAY_SLOTS)) / (1 - np.exp(-10 / _ACCIDENTAL_DECAY_SLOTS))


def day_events(
    settings: GeneratorSettings, items: Items, users: Users, day: int, chunk: int
) -> pd.DataFrame:
    """All events of `users` on day index `day`, sorted by time, with truth columns.

    Landing columns: event_id, event_type, user_id, item_id, category_id,
    impression_id, position, ts, dwell_ms, content_length. Truth columns:
    label (genuine / accidental / human_burst / bot for clicks, None for
    impressions), click_prob (human impressions: the true probability of a
    genuine click), click_prob_nightly (the same with what a nightly batch
    cannot know marginalized out: see `_nightly_click_prob`), is_bot_user and user_kind.
    """
    rng = np.random.default_rng([settings.seed, 0xDA7, day, chunk])
    previous, today = interest_log_weights(settings, users, chunk, day)
    nightly_rng = np.random.default_rng([settings.seed, 0x0AC1E, day, chunk])
    day_start_ms = int(
        dt.datetime.combine(settings.start_date + dt.timedelta(days=day), dt.time(), tzinfo=dt.UTC).timestamp()
        * 1000
    )
    frames = [
        _human_events(settings, items, users, (previous, today), np.flatnonzero(~users.is_bot), day_start_ms, rng, nightly_rng),
        _bot_events(items, users, np.flatnonzero(users.is_bot), day_start_ms, rng),
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
    log_weights: tuple[np.ndarray, np.ndarray],
    members: np.ndarray,
    day_start_ms: int,
    rng: np.random.Generator,
    nightly_rng: np.random.Generator,
) -> pd.DataFrame:
    previous, today = log_weights
    weight = normalized(today, users.interests)
    n_sessions = rng.poisson(users.sessions_per_day[members])
    session_user = np.repeat(members, n_sessions)
    n_s = len(session_user)
    session_start_ms = day_start_ms + _session_starts_s(n_s, rng) * 1000
    focus = np.stack([_interest_of(users.interests, weight, session_user, rng),
                      _interest_of(users.interests, weight, session_user, rng)], 1)
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
    interest_pick = _interest_of(users.interests, weight, imp_user, rng)
    random_pick = rng.choice(len(items.category_share), size=n_i, p=items.category_share)
    category = np.where(source < _FOCUS_SHARE, in_focus_pick,
                        np.where(source < _FOCUS_SHARE + _INTEREST_SHARE, interest_pick, random_pick))
    item = distinct_page_items(items, category, imp_request, rng)
    category = items.category[item]
    slot = users.interests[imp_user] == category[:, None]  # [n_i, MAX_INTERESTS], at most one True
    in_focus = (category == focus[imp_session, 0]) | (category == focus[imp_session, 1])
    logit = _click_logit(items, item, position, (slot * weight[imp_user]).sum(axis=1))
    click_prob = _sigmoid(logit + _CLICK_FOCUS * in_focus)
    click_prob_nightly = _nightly_click_prob(items, item, position, slot, previous, imp_user, members, users.interests, nightly_rng)

    noise = settings.noise_scale
    burst_request = rng.random(n_r) < min(HUMAN_BURST_RATE * noise, 1.0)
    in_burst = burst_request[imp_request]
    genuine = ~in_burst & (rng.random(n_i) < click_prob)
    accidental_prob = ACCIDENTAL_CLICK_RATE * noise * _ACCIDENTAL_SCALE * np.exp(-position / _ACCIDENTAL_DECAY_SLOTS)
    accidental = ~in_burst & ~genuine & (rng.random(n_i) < np.minimum(accidental_prob, 1.0))
    burst = in_burst & (rng.random(n_i) < 0.6)
    clicked = genuine | accidental | burst
    label = np.select([genuine, accidental, burst], [GENUINE, ACCIDENTAL, HUMAN_BURST], "")

    # Time: each page is scanned, then its clicks happen in order of position,
    # each one a short reach-for-it gap plus the read (dwell) before the next.
    c = np.flatnonzero(clicked)
    c_request = imp_request[c]
    n_c = len(c)
    dwell_s = np.empty(n_c)
    genuine_c, accidental_c, burst_c = genuine[c], accidental[c], burst[c]
    dwell_s[genuine_c] = _genuine_read_s(items.read_need_s[item[c][genuine_c]], users.speed_factor[imp_user[c][genuine_c]], rng)
    dwell_s[accidental_c] = rng.lognormal(np.log(2.2), 0.75, size=accidental_c.sum())
    dwell_s[burst_c] = rng.lognormal(np.log(1.4), 0.8, size=burst_c.sum())
    dwell_ms = np.clip(dwell_s * 1000, 0, 1_800_000).astype(np.int64)
    gap_ms = np.where(
        burst_c, rng.lognormal(np.log(600), 0.45, n_c), rng.lognormal(np.log(1500), 0.4, n_c)
    ).astype(np.int64)
    # A tab opened in a burst is read later, if at all: the next click does not wait for it.
    step_ms = gap_ms + np.where(burst_c, 0, dwell_ms)
    click_offset_ms = _grouped_cumsum(step_ms, c_request) - step_ms + gap_ms

    scan_ms = rng.lognormal(np.log(4000), 0.5, size=n_r).astype(np.int64)
    request_ms = scan_ms + np.bincount(c_request, weights=step_ms, minlength=n_r).astype(np.int64)
    request_ms += rng.lognormal(np.log(3000), 0.5, size=n_r).astype(np.int64)
    request_start_ms = session_start_ms[request_session] + _grouped_cumsum(request_ms, request_session) - request_ms

    page = _Page(users.user_id[imp_user], item, category, imp_request, position, request_start_ms[imp_request])
    clicked_ts = request_start_ms[c_request] + scan_ms[c_request] + click_offset_ms
    return _page_events(
        items, page, c, clicked_ts, pd.array(dwell_ms, dtype="Int64"), label[c], (click_prob, click_prob_nightly),
        users.kind[imp_user],
    )


def _genuine_read_s(need_s: np.ndarray, speed_factor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Genuine read times: the item's need times the reader's speed factor times a
    wide per-read factor; a share of reads is over in under a second."""
    read = need_s * speed_factor * rng.lognormal(0.0, READ_SIGMA, size=len(need_s))
    glance = rng.random(len(need_s)) < ZERO_READ_SHARE
    return np.where(glance, rng.uniform(0.0, 0.9, size=len(need_s)), read)


def _bot_events(
    items: Items, users: Users, members: np.ndarray, day_start_ms: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Bots' pages and clicks for the day.

    Scrapers: one run of pages at a per-bot period with a per-bot jitter
    (coefficient of variation 0.15 to 0.5), clicking most slots, reporting a
    dwell (just under the step) or none at all. Human-like bots: a dozen short
    sessions spread over the whole day, irregular gaps, dwell of a few seconds
    whatever the item, but several times a human's volume and click-through.
    """
    if len(members) == 0:
        return pd.DataFrame()
    n_b = len(members)
    scraper = users.kind[members] == UserKind.SCRAPER
    clicks_target = np.exp(rng.uniform(np.log(80), np.log(np.where(scraper, 600, 300))))
    click_share = np.where(scraper, rng.uniform(0.6, 0.95, n_b), rng.uniform(0.3, 0.6, n_b))
    slots = 10
    n_pages = np.maximum(1, np.ceil(clicks_target / (click_share * slots))).astype(np.int64)
    n_sessions = np.where(scraper, 1, rng.integers(8, 21, n_b))
    # Pages are dealt to sessions in turn; sessions start anywhere in the day, no diurnal rhythm.
    page_bot = np.repeat(np.arange(n_b), n_pages)
    page_rank = _rank_in_group(n_pages)
    page_session = page_bot * 32 + page_rank % n_sessions[page_bot]
    order = np.lexsort((page_rank, page_session))
    page_bot, page_session = page_bot[order], page_session[order]
    n_r = len(page_bot)

    imp_request = np.repeat(np.arange(n_r), slots)
    position = np.tile(np.arange(slots), n_r)
    imp_bot = page_bot[imp_request]
    category = rng.choice(len(items.category_share), size=n_r * slots, p=items.category_share)
    item = distinct_page_items(items, category, imp_request, rng)
    category = items.category[item]
    clicked = rng.random(n_r * slots) < click_share[imp_bot]
    c = np.flatnonzero(clicked)
    c_request, c_bot = imp_request[c], imp_bot[c]
    n_c = len(c)

    period_ms = rng.lognormal(np.log(4000), 0.4, n_b)
    jitter = rng.uniform(0.15, 0.5, n_b)
    human_like_dwell_ms = rng.lognormal(np.log(8000), 0.6, n_c)
    step_ms = np.where(
        scraper[c_bot],
        period_ms[c_bot] * rng.lognormal(0.0, jitter[c_bot], n_c),
        human_like_dwell_ms + rng.lognormal(np.log(3000), 0.8, n_c),
    ).astype(np.int64)
    reports_dwell = rng.random(n_b) < 0.5
    dwell = pd.array(
        np.where(scraper[c_bot], np.maximum(step_ms - 200, 0), human_like_dwell_ms).astype(np.int64), dtype="Int64"
    )
    dwell[scraper[c_bot] & ~reports_dwell[c_bot]] = pd.NA

    click_offset_ms = _grouped_cumsum(step_ms, c_request) - step_ms
    page_ms = np.bincount(c_request, weights=step_ms, minlength=n_r).astype(np.int64) + 800
    session_ms = np.bincount(page_session, weights=page_ms, minlength=int(page_session.max()) + 1).astype(np.int64)
    latest_start_ms = np.maximum(_DAY_MS - 60_000 - session_ms, 0)
    session_start_ms = (rng.random(len(session_ms)) * latest_start_ms).astype(np.int64)
    page_start_ms = (
        day_start_ms + session_start_ms[page_session] + _grouped_cumsum(page_ms, page_session) - page_ms
    )
    page = _Page(
        users.user_id[members][imp_bot], item, category, imp_request + _BOT_REQUEST_OFFSET, position,
        page_start_ms[imp_request],
    )
    clicked_ts = page_start_ms[c_request] + 300 + click_offset_ms
    return _page_events(items, page, c, clicked_ts, dwell, BOT, np.nan, users.kind[members][imp_bot])


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
    click_probs: tuple[np.ndarray, np.ndarray] | float,
    user_kind: np.ndarray,
) -> pd.DataFrame:
    """The impression events of every slot, then the click events of the `clicked` slots."""

    def events(rows: np.ndarray | slice, event_type: str, ts, dwell, label, prob) -> pd.DataFrame:
        item = page.item[rows]
        kind = user_kind[rows]
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
                "content_length": pd.array(items.content_length[item], dtype="Int64"),
                "label": label,
                "click_prob": prob[0],
                "click_prob_nightly": prob[1],
                "is_bot_user": kind != UserKind.HUMAN,
                "user_kind": np.array(UserKind.NAMES)[kind],
            }
        )

    shown = len(page.item)
    impressions = events(
        slice(None), "impression", page.shown_ms + 20 * page.position,
        pd.array([None] * shown, dtype="Int64"), None,
        click_probs if isinstance(click_probs, tuple) else (click_probs, click_probs),
    )
    clicks = events(clicked, "click", clicked_ts, dwell_ms, click_label, (np.nan, np.nan))
    return pd.concat([impressions, clicks], ignore_index=True)


def _session_starts_s(n: int, rng: np.random.Generator) -> np.ndarray:
    weights = _HOURLY_ACTIVITY / _HOURLY_ACTIVITY.sum()
    seconds = (rng.choice(24, size=n, p=weights) + rng.random(n)) * 3600
    return np.minimum(seconds, _LAST_SESSION_START_S).astype(np.int64)


def _interest_of(interests: np.ndarray, weights: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of each row's user's interests, drawn by `weights` (rows of users)."""
    cum = np.cumsum(weights[rows], axis=1)
    slot = (cum < rng.random(len(rows))[:, None]).sum(axis=1)
    n_active = (interests[rows] >= 0).sum(axis=1)
    slot = np.minimum(slot, n_active - 1, out=slot)
    return interests[rows, np.minimum(slot, MAX_INTERESTS - 1)]


def _click_logit(items: Items, item: np.ndarray, position: np.ndarray, affinity: np.ndarray) -> np.ndarray:
    """The logit of a genuine click out of the session's focus."""
    return _CLICK_BASE + _CLICK_AFFINITY * affinity + _CLICK_POSITION * position + items.quality[item]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _nightly_click_prob(items: Items, item: np.ndarray, position: np.ndarray, slot: np.ndarray, previous: np.ndarray,
                        imp_user: np.ndarray, members: np.ndarray, interests: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """The click probability of each impression given what a nightly batch can
    know: the day before's interest weights, the item and its slot. The day's
    drift step (_NIGHTLY_SAMPLES draws of it per user) and the session's focus
    are marginalized out, the focus in closed form given that this item was
    shown: with the user's weight w of the item's category and its popularity
    share p, a page shows the category with probability P = F w + I w + R p
    (focus, interest and random picks) and shows it while in focus with
    probability A = F w + (I w + R p) q, q = w (1.5 - 0.5 w) the chance that
    one of the session's two focus draws (the second a repeat half the time)
    is the category. P(click | shown) = sum over draws of [A s(L + focus) +
    (P - A) s(L)] / sum over draws of P, L the logit out of focus."""
    users = np.unique(members)
    row = np.searchsorted(users, imp_user)
    has, at = slot.any(axis=1), slot.argmax(axis=1)
    share = items.category_share[items.category[item]]
    numerator = np.zeros(len(item))
    denominator = np.zeros(len(item))
    for _ in range(_NIGHTLY_SAMPLES):
        w = np.where(has, normalized(drift_step(previous[users], rng), interests[users])[row, at], 0.0)
        shown = (_FOCUS_SHARE + _INTEREST_SHARE) * w + _RANDOM_SHARE * share
        in_focus = _FOCUS_SHARE * w + (_INTEREST_SHARE * w + _RANDOM_SHARE * share) * w * (1.5 - 0.5 * w)
        logit = _click_logit(items, item, position, w)
        numerator += in_focus * _sigmoid(logit + _CLICK_FOCUS) + (shown - in_focus) * _sigmoid(logit)
        denominator += shown
    return numerator / denominator


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
