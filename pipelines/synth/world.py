"""The synthetic world: items, users and the parameters of their behavior.

Everything is drawn from the seed, so any worker process can rebuild the same
world instead of receiving it. User attributes are drawn per user chunk, so a
chunk's users are the same whatever the total number of chunks or workers.

Calibration (measured by `tests/test_synth_generator.py` against
../shared/data/ebnerd_fixture/history.parquet, whose clicks have a median read
time of 15 s and 22% of reads under 5 s): a genuine read lasts
content_length / reading_speed times a log-normal factor (sigma 0.35), with
content lengths log-normal around 75 words (sigma 0.75) and reading speeds
around 4 words/s; fake-interest clicks last about 1 to 2 s. Together they give
a click dwell median of 15.9 s and 21.5% of clicks under 5 s at noise_scale 1
(seed 7, 20,000 users, one day); the test allows 2.5 s and 3 points.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipelines.config import GeneratorSettings

# Interests per user and how strongly they dominate a user's reading.
MIN_INTERESTS, MAX_INTERESTS = 3, 8
# Share of users that are bots or crawlers at noise_scale 1.
BOT_USER_SHARE = 0.004
# Rates of fake interest at noise_scale 1.
ACCIDENTAL_CLICK_RATE = 0.013  # per impression that was not clicked on purpose
HUMAN_BURST_RATE = 0.01  # per request (one page of impressions)


@dataclasses.dataclass(frozen=True)
class Items:
    category: np.ndarray  # int32[n_items], item i has id i + 1
    content_length: np.ndarray  # int32 words
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
    interest_weight: np.ndarray  # float64[n, MAX_INTERESTS], rows sum to 1
    reading_speed: np.ndarray  # words per second
    sessions_per_day: np.ndarray  # Poisson mean
    is_bot: np.ndarray  # bool


def world_items(settings: GeneratorSettings) -> Items:
    rng = np.random.default_rng([settings.seed, 0x17E45])
    n, k = settings.items, settings.categories
    category_share = _zipf_weights(k, 0.8, rng)
    category = rng.choice(k, size=n, p=category_share).astype(np.int32)
    category[: min(k, n)] = np.arange(min(k, n))  # no category without items
    # Some categories (briefs, live blogs) are short, others long-form.
    category_length_scale = rng.lognormal(0.0, 0.35, size=k)
    content_length = np.clip(
        rng.lognormal(np.log(75.0), 0.75, size=n) * category_length_scale[category], 15, 4000
    ).astype(np.int32)
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
        content_length=content_length,
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
    return Users(
        user_id=np.arange(first + 1, first + n + 1, dtype=np.int64),
        interests=interests,
        interest_weight=weight,
        reading_speed=rng.lognormal(np.log(4.0), 0.3, size=n),
        sessions_per_day=rng.lognormal(np.log(1.2), 0.6, size=n),
        is_bot=rng.random(n) < bot_share,
    )


def chunk_count(settings: GeneratorSettings) -> int:
    return -(-settings.users // settings.users_per_chunk)


def sample_items_of_categories(items: Items, categories: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One item index per requested category, drawn in proportion to item popularity."""
    target = items.category_start_mass[categories] + rng.random(len(categories)) * items.category_mass[categories]
    pos = np.searchsorted(items.cum_popularity, target, side="right")
    return items.by_category[np.minimum(pos, len(items.by_category) - 1)]


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    rng.shuffle(weights)
    return weights / weights.sum()
