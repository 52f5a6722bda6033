"""Bands a newest date's rate or row count must fall in, derived from the same
figure on the previous published dates (which passed their own gates).

Rates (label rate, noise rate, score coverage) are held to the prediction
interval of one more day given the trailing days' mean and spread (Student t,
so a short history gives a wide band by itself), never narrower than the
day's binomial sampling noise; without enough history a band is the wide
sanity interval (for example a label rate strictly between 0 and 1). Volumes
are held to the same interval on log rows. No band is a constant fitted to the
synthetic generator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import statistics
from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy.stats import t as student_t


@dataclasses.dataclass(frozen=True)
class DayRate:
    """A rate on one published date and the rows it is a mean over."""

    day: dt.date
    rate: float
    rows: int


@dataclasses.dataclass(frozen=True)
class Band:
    """[low, high] (bounds excluded where strict) and where it came from."""

    low: float
    high: float
    strict_low: bool = False
    strict_high: bool = False
    basis: str = "sanity bounds"


def rate_band(history: Sequence[DayRate], sanity: Band, *, alpha: float = 1e-3, min_days: int = 3) -> Band:
    """The band a rate of the next date should fall in, from its `history`
    (the previous published dates, which passed their own gates): the
    (1 - alpha) prediction interval of one more day, mean +- t(n-1) * sd *
    sqrt(1 + 1/n) over the n daily rates, so that few days of history give a
    wide band on their own and a steady rate a narrow one. The sd is at least
    the binomial sampling noise sqrt(p(1 - p) / rows) of the smallest day.
    Clipped to `sanity`; `sanity` itself with fewer than `min_days` days."""
    usable = sorted((h for h in history if h.rows > 0 and not math.isnan(h.rate)), key=lambda h: h.day)
    if len(usable) < max(min_days, 2):
        return dataclasses.replace(sanity, basis=f"sanity bounds ({len(usable)} days of history < {max(min_days, 2)})")
    rates = [h.rate for h in usable]
    n, mean = len(rates), statistics.fmean(rates)
    noise = math.sqrt(max(mean * (1 - mean), 0.0) / min(h.rows for h in usable))
    sd = max(statistics.stdev(rates), noise)
    half = float(student_t.ppf(1 - alpha / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    low, high = mean - half, mean + half
    clipped_low, clipped_high = low <= sanity.low, high >= sanity.high
    return Band(
        low=sanity.low if clipped_low else low,
        high=sanity.high if clipped_high else high,
        strict_low=sanity.strict_low and clipped_low,
        strict_high=sanity.strict_high and clipped_high,
        basis=f"{n} days {usable[0].day}..{usable[-1].day}: mean {mean:.4g}, sd {sd:.3g}, {1 - alpha:.1%} prediction interval",
    )


def trailing_rates(
    published: DataFrame, date_column: str, rate_expression: str, first: dt.date, last: dt.date
) -> list[DayRate]:
    """Per date of `published` in [first, last]: the mean of `rate_expression`
    (a 0/1 Spark SQL expression, null where the row does not count) and how many
    rows it averages. One row per date comes back to the driver."""
    rate = F.expr(rate_expression)
    rows = (
        published.where(F.col(date_column).between(F.lit(first), F.lit(last)))
        .groupBy(date_column)
        .agg(F.avg(rate).alias("rate"), F.count(rate).alias("rows"))
        .collect()
    )
    return sorted(
        (DayRate(r[date_column], float(r["rate"]), int(r["rows"])) for r in rows if r["rows"]), key=lambda d: d.day
    )


def volume_band(history: Sequence[DayRate], *, alpha: float = 1e-3, min_days: int = 3) -> Band:
    """The band the row count of the next date should fall in, from the row
    counts of the previous published dates (`DayRate.rows`): the (1 - alpha)
    prediction interval of one more day's log rows, mean +- t(n-1) * sd *
    sqrt(1 + 1/n), on the log scale since volumes vary by factors; the sd is at
    least the Poisson noise of the log of the smallest day's count. With fewer
    than `min_days` days of history, no bound: a new feed may start small."""
    usable = sorted((h for h in history if h.rows > 0), key=lambda h: h.day)
    if len(usable) < max(min_days, 2):
        return Band(0, math.inf, basis=f"no bound: {len(usable)} days of history < {max(min_days, 2)}")
    logs = [math.log(h.rows) for h in usable]
    n, mean = len(logs), statistics.fmean(logs)
    sd = max(statistics.stdev(logs), 1 / math.sqrt(min(h.rows for h in usable)))
    half = float(student_t.ppf(1 - alpha / 2, n - 1)) * sd * math.sqrt(1 + 1 / n)
    return Band(
        max(1, math.floor(math.exp(mean - half))), math.ceil(math.exp(mean + half)),
        basis=f"{n} days {usable[0].day}..{usable[-1].day}: median {math.exp(statistics.median(logs)):,.0f} rows, "
              f"sd of log rows {sd:.3g}, {1 - alpha:.1%} prediction interval",
    )


def band_text(band: Band) -> str:
    return f"{'(' if band.strict_low else '['}{band.low:.4g}, {band.high:.4g}{')' if band.strict_high else ']'}"
