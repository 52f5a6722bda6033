"""The synthetic world: items, users and the parameters of their behavior.

Everything is drawn from the seed, so any worker process can rebuild the same
world instead of receiving it. User attributes are drawn per user chunk, so a
chunk's users are the same whatever the total number of chunks or workers.

Genuine reading is realistic rather than invertible: each item has its own
typical read time, only loosely tied to its content length (correlation about
0.5), and the content length is reported for part of the items only
(`content_length_coverage`). A genuine read lasts that time, times the user's
own speed factor, times a wide per-read factor, and 6.5% of genuine reads are
near 0 s (the reader got what they wanted from the headline). Calibration,
checked by `tests/test_synth_generator.py` against the EB-NeRD sample in
`tests/data/ebnerd_fixture/history.parquet` (median read time 15 s, 22% of
reads under 5 s, 6% at 0 s) with noise switched off: genuine reads alone give
those figures, so fake interest is not what makes the short clicks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipelines.config import GeneratorSettings

# Interests per user: 4 to 12 of the 40 categories puts the genuine
# click-through of a page at 9.3% (EB-NeRD's fixture: 9.7% of the articles in view).
MIN_INTERESTS, MAX_INTERESTS = 4, 12
# The interest weights drift: each day every log-weight takes a random step of
# this standard deviation, so that over a month a weight moves by a factor of
# about 1.3 and the distant past tells a little less of today than last week does.
INTEREST_DRIFT_PER_DAY = 0.05

# Share of users that are bots at noise_scale 1, and the share of bots that
# are scrapers (the rest behave like humans in rhythm but not in volume or choice).
BOT_USER_SHARE = 0.004
SCRAPER_SHARE = 0.6
# Rates of fake interest at noise_scale 1.
ACCIDENTAL_CLICK_RATE = 0.013  # per impression that was not clicked on purpose, on average over a page
HUMAN_BURST_RATE = 0.01  # per request (one page of impressions): the user opens several tabs at once

# Genuine reading, in log seconds: a typical item needs GENUINE_MEDIAN_S for a
# reader of average speed; the spread between items, between users and between
# reads of one user, and the share of near-0 s genuine reads.
GENUINE_MEDIAN_S = 16.0
ITEM_NEED_SIGMA = 0.45
CATEGORY_NEED_SIGMA = 0.3
NEED_PER_LOG_LENGTH = 0.45
USER_SPEED_SIGMA = 0.4
READ_SIGMA = 1.0
ZERO_READ_SHARE = 0.065


class UserKind:
    HUMAN, SCRAPER, HUMANLIKE_BOT = 0, 1, 2
    NAMES = ("human", "scraper", "humanlike_bot")


@dataclasses.dataclass(frozen=True)
class Items:
    category: np.ndarray  # int32[n_items], item i has id i + 1
    content_length: np.ndarray  # float64 words, NaN where the source does not report it
    read_need_s: np.ndarray  # float64 typical genuine read time for an average reader
    quality: np.ndarray  # float32 logit offset
    # Items sorted by category with cumulative popularity, for sampling an item
    # of a given category in proportion to its popularity.
    by_category: np.ndarray  # int64 item indices, grouped by category
    cum_popularity: np.ndarray  # float64, over by_category
    category_start_mass: np.ndarray  # float64[n_categories]
    category_mass: np.ndarray  # float64[n_categories]
    category_share: np.ndarray  # float64[n_categories], marginal popularity of categories


@dataclasses.dataclass(frozen=True)
class Users:
    user_id: np.ndarray  # int64
    interests: np.ndarray  # int32[n, MAX_INTERESTS] category ids, -1 padded
    interest_weight: np.ndarray  # float64[n, MAX_INTERESTS], rows sum to 1: before day 0 (see interest_log_weights)
    speed_factor: np.ndarray  # multiplies an item's read need: > 1 is a slow reader
    sessions_per_day: np.ndarray  # Poisson mean
    kind: np.ndarray  # int8 UserKind

    @property
    def is_bot(self) -> np.ndarray:
        return self.kind != UserKind.HUMAN


def world_items(settings: GeneratorSettings) -> Items:
    rng = np.random.default_rng([settings.seed, 0x17E45])
    n, k = settings.items, settings.categories
    category_share = _zipf_weights(k, 0.8, rng)
    category = rng.choice(k, size=n, p=category_share).astype(np.int32)
    category[: min(k, n)] = np.arange(min(k, n))  # no category without items
    # Some categories (briefs, live blogs) are short, others long-form.
    category_length_scale = rng.lognormal(0.0, 0.35, size=k)
    length = np.clip(rng.lognormal(np.log(250.0), 0.6, size=n) * category_length_scale[category], 20, 5000)
    category_need = rng.normal(0.0, CATEGORY_NEED_SIGMA, size=k)
    log_need = (
        np.log(GENUINE_MEDIAN_S)
        + NEED_PER_LOG_LENGTH * (np.log(length) - np.log(250.0))
        + category_need[category]
        + rng.normal(0.0, ITEM_NEED_SIGMA, size=n)
    )
    reported = rng.random(n) < settings.content_length_coverage
    popularity = rng.pareto(1.2, size=n) + 1.0
    quality = rng.normal(0.0, 0.4, size=n).astype(np.float32)
    order = np.argsort(category, kind="stable")
    cum = np.cumsum(popularity[order])
    counts = np.bincount(category, minlength=k)
    ends = np.cumsum(counts)
    starts = ends - counts
    end_mass = np.where(counts > 0, cum[np.maximum(ends - 1, 0)], 0.0)
    start_mass = np.where(starts > 0, cum[np.maximum(starts - 1, 0)], 0.0)
    start_mass = np.where(counts > 0, start_mass, 0.0)
    return Items(
        category=category,
        content_length=np.where(reported, np.round(length), np.nan),
        read_need_s=np.exp(log_need),
        quality=quality,
        by_category=order.astype(np.int64),
        cum_popularity=cum,
        category_start_mass=start_mass,
        category_mass=end_mass - start_mass,
        category_share=np.bincount(category, weights=popularity, minlength=k) / popularity.sum(),
    )


def world_users(settings: GeneratorSettings, chunk: int) -> Users:
    """The users of chunk `chunk` (ids chunk*users_per_chunk + 1 ...)."""
    first = chunk * settings.users_per_chunk
    n = min(settings.users_per_chunk, settings.users - first)
    rng = np.random.default_rng([settings.seed, 0x05E25, chunk])
    k = settings.categories
    n_interests = rng.integers(MIN_INTERESTS, MAX_INTERESTS + 1, size=n)
    # Distinct categories per user: the first n_interests of a random permutation.
    interests = np.argsort(rng.random((n, k)), axis=1)[:, :MAX_INTERESTS].astype(np.int32)
    slot = np.arange(MAX_INTERESTS)[None, :]
    active = slot < n_interests[:, None]
    interests = np.where(active, interests, -1)
    weight = np.where(active, rng.gamma(0.8, size=(n, MAX_INTERESTS)), 0.0)
    weight = weight / weight.sum(axis=1, keepdims=True)
    bot_share = min(BOT_USER_SHARE * settings.noise_scale, 0.5)
    is_bot = rng.random(n) < bot_share
    scraper = rng.random(n) < SCRAPER_SHARE
    kind = np.where(is_bot, np.where(scraper, UserKind.SCRAPER, UserKind.HUMANLIKE_BOT), UserKind.HUMAN)
    speed_factor = rng.lognormal(0.0, USER_SPEED_SIGMA, size=n)
    sessions_per_day = rng.lognormal(np.log(1.2), 0.6, size=n)
    # A stream of its own, so that the other users' draws do not depend on the heavy share.
    heavy = (np.random.default_rng([settings.seed, 0x4EA7, chunk]).random(n) < settings.heavy_user_share) & ~is_bot
    return Users(
        user_id=np.arange(first + 1, first + n + 1, dtype=np.int64),
        interests=interests,
        interest_weight=weight,
        speed_factor=speed_factor,
        sessions_per_day=np.where(heavy, sessions_per_day * settings.heavy_user_activity, sessions_per_day),
        kind=kind.astype(np.int8),
    )


def drift_step(log_weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Interest log-weights a day later."""
    return log_weight + rng.normal(0.0, INTEREST_DRIFT_PER_DAY, size=log_weight.shape)


def interest_log_weights(settings: GeneratorSettings, users: Users, chunk: int, day: int) -> tuple[np.ndarray, np.ndarray]:
    """(the day before's, the day's) interest log-weights of the users of `chunk`
    on day index `day` (normalize with `normalized`). Before day 0 they are the
    drawn weights; each day's step comes from a stream of its own, so a day's
    weights do not depend on how many days are generated."""
    log_weight = np.log(np.where(users.interests >= 0, users.interest_weight, 1.0))
    for step in range(day + 1):
        previous, log_weight = log_weight, drift_step(log_weight, np.random.default_rng([settings.seed, 0xD81F7, chunk, step]))
    return previous, log_weight


def normalized(log_weight: np.ndarray, interests: np.ndarray) -> np.ndarray:
    """Weights over the active interests (rows sum to 1) from unnormalized logs."""
    log_weight = np.where(interests >= 0, log_weight, -np.inf)
    weight = np.exp(log_weight - log_weight.max(axis=-1, keepdims=True))
    return weight / weight.sum(axis=-1, keepdims=True)


def chunk_count(settings: GeneratorSettings) -> int:
    return -(-settings.users // settings.users_per_chunk)


def sample_items_of_categories(items: Items, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One item index per requested category, drawn in proportion to item popularity."""
    target = items.category_start_mass[categories] + rng.random(len(categories)) * items.category_mass[categories]
    pos = np.searchsorted(items.cum_popularity, target, side="right")
    return items.by_category[np.minimum(pos, len(items.by_category) - 1)]


def distinct_page_items(
    items: Items, categories: np.ndarray, pages: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One item per slot, drawn by `sample_items_of_categories`, never twice on one
    page (`pages`: the page of each slot): a real feed deduplicates what it shows.

    Repeats are redrawn from the same category; the few that a small category
    cannot fill move to the next item id.
    """
    chosen = sample_items_of_categories(items, categories, rng)
    n_items = len(items.category)
    for attempt in range(12):
        repeated = _repeated_on_page(chosen, pages, n_items)
        if not repeated.any():
            return chosen
        if attempt < 8:
            chosen[repeated] = sample_items_of_categories(items, categories[repeated], rng)
        else:
            chosen[repeated] = (chosen[repeated] + 1 + rng.integers(0, n_items - 1, repeated.sum())) % n_items
    while (repeated := _repeated_on_page(chosen, pages, n_items)).any():
        chosen[repeated] = (chosen[repeated] + 1) % n_items
    return chosen


def _repeated_on_page(chosen: np.ndarray, pages: np.ndarray, n_items: int) -> np.ndarray:
    """True for every slot whose item already appeared on its page in an earlier slot."""
    key = pages.astype(np.int64) * n_items + chosen
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    repeated = np.zeros(len(chosen), dtype=bool)
    repeated[order[1:]] = sorted_key[1:] == sorted_key[:-1]
    return repeated


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    rng.shuffle(weights)
    return weights / weights.sum()
