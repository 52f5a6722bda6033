"""The denoising flags against evidence of interest, where a source has no
truth: which clicks later actions confirm, and the flags against the fixed
dwell threshold that flags as many clicks."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipelines.clickstream.denoise_quality import (
    ProxyCounts,
    confirmed_clicks,
    matched_threshold,
    proxy_quality,
)

DAY = dt.date(2026, 11, 2)
NOON_MS = int(dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC).timestamp() * 1000)
HOUR_MS = 3_600_000


def test_a_click_is_confirmed_by_the_same_users_later_action_on_the_same_item_a_deep_read_or_a_return(spark):
    def event(event_id: str, kind: str, item: int, hours: float, session: str, user: int = 1,
              scroll: float | None = None) -> tuple:
        ts = NOON_MS + int(hours * HOUR_MS)
        day = dt.datetime.fromtimestamp(ts / 1000, dt.UTC).date()
        return (event_id, kind, user, item, ts, session, day, 20_000 if kind == "click" else None, None, scroll)

    events = spark.createDataFrame([
        event("carted", "click", 10, 0, "s1"), event("cart", "cart", 10, 1, "s2"),
        event("other item", "click", 11, 0, "s1"), event("cart of 12", "cart", 12, 1, "s2"),
        event("again in session", "click", 13, 0, "s1"), event("same session", "click", 13, 0.1, "s1"),
        event("came back", "click", 14, 0, "s1"), event("next day", "click", 14, 24, "s3"),
        event("bought too late", "click", 15, 0, "s1"), event("buy", "buy", 15, 8 * 24, "s9"),
        event("another user's cart", "click", 16, 0, "s1"), event("their cart", "cart", 16, 1, "u2", user=2),
        event("carted before", "click", 17, 2, "s2"), event("cart first", "cart", 17, 1, "s2"),
        event("faved and bought", "click", 18, 0, "s1"), event("fav", "fav", 18, 1, "s2"), event("buy 18", "buy", 18, 2, "s2"),
        # Scroll depth, where the source logs it: read to the end (100%) is a deep read.
        event("read to the end", "click", 19, 0, "s1", scroll=100.0), event("most of it", "click", 20, 0, "s1", scroll=99.0),
        event("deep read, carted", "click", 21, 0, "s1", scroll=100.0), event("cart 21", "cart", 21, 1, "s2"),
        event("deep read, came back", "click", 22, 0, "s1", scroll=100.0), event("back to 22", "click", 22, 30, "s4"),
    ], "event_id string, event_type string, user_id long, item_id long, ts long, session_id string, event_date date, "
       "dwell_ms long, noise_reason string, scroll_pct float")
    got = {r["event_id"]: r["evidence"] for r in confirmed_clicks(events, DAY, DAY, 7, deep_read_scroll_pct=100.0).collect()}
    assert got == {
        "carted": "cart", "other item": None, "again in session": None, "same session": None, "came back": "return",
        "bought too late": None, "another user's cart": None, "carted before": None, "faved and bought": "buy",
        "read to the end": "deep_read", "most of it": None, "deep read, carted": "cart", "deep read, came back": "deep_read",
    }


def _counts(users: int = 3) -> ProxyCounts:
    """Every user: 100 clicks, 50 confirmed; the flags take 20, 3 of them
    confirmed; dwell < 1 s takes 10 (2 confirmed), dwell < 2 s 30 (10)."""
    def each(*values) -> np.ndarray:
        return np.array([values] * users if len(values) > 1 else list(values) * users)
    return ProxyCounts(each(100), each(50), each(20), each(3), each(10, 30), each(2, 10), (1_000, 2_000))


def test_the_flags_are_compared_with_the_fixed_threshold_that_flags_as_many_clicks():
    figures = proxy_quality(_counts(), resamples=200, table_ms=(1_000, 2_000))
    assert (figures["users"], figures["clicks"], figures["confirmed"]) == (3, 300, 150)
    # Flags: 20% of all clicks, 6% of confirmed ones, a ratio of 0.3.
    assert figures["flags"] == {"rate_all": 0.2, "rate_confirmed": 0.06, "ratio": 0.3, "ratio_ci": [0.3, 0.3]}
    assert figures["fixed"] == {
        "1s": {"rate_all": 0.1, "rate_confirmed": 0.04, "ratio": 0.4, "ratio_ci": [0.4, 0.4]},
        "2s": {"rate_all": 0.3, "rate_confirmed": 0.2, "ratio": 0.6667, "ratio_ci": [0.6667, 0.6667]},
    }
    # 20% lies halfway between 1 s (10%) and 2 s (30%): at 1.5 s, confirmed
    # clicks are flagged at 4% + (20% - 4%) / 2 = 12%, a ratio of 0.6.
    assert figures["matched_rate"] == {"threshold_s": 1.5, "ratio": 0.6, "flags_minus_fixed": -0.3,
                                       "ratio_ci": [0.6, 0.6], "flags_minus_fixed_ci": [-0.3, -0.3]}


def test_users_who_differ_widen_the_interval_around_the_same_point():
    counts = _counts(2)
    # A second kind of user: the flags take 20 of its clicks, none confirmed.
    uneven = ProxyCounts(counts.clicks, counts.confirmed, counts.flagged, np.array([6, 0]), counts.under,
                         counts.under_confirmed, counts.thresholds_ms)
    figures = proxy_quality(uneven, resamples=500, table_ms=(1_000, 2_000))
    low, high = figures["flags"]["ratio_ci"]
    assert figures["flags"]["ratio"] == 0.3 and low < 0.3 < high and low >= 0 and high <= 0.6


def test_a_flag_rate_past_the_grid_has_no_matched_threshold():
    assert matched_threshold(0.5, (1_000, 2_000), np.array([0.1, 0.3]), np.array([0.04, 0.2])) is None
    assert matched_threshold(0.05, (1_000, 2_000), np.array([0.1, 0.3]), np.array([0.04, 0.2])) == (500.0, 0.02)


def test_evaluate_denoise_proxy_on_an_imported_log_counts_what_a_reference_finds(spark, tmp_path):
    """A Taobao-format log (clicks, carts; no dwell) through import and clean;
    the confirmed clicks are those a plain pandas reading of the file confirms."""
    import pandas as pd

    from jobs.cli import invoke
    from pipelines.errors import MissingInputError
    from pipelines.stages.clean import clean_dates
    from pipelines.stages.evaluate import denoise_proxy, proxy_lines
    from pipelines.stages.imports import import_source
    from tests.conftest import settings_in

    start = dt.datetime(2017, 11, 25, 8, tzinfo=dt.UTC)
    rows = []
    for day in range(4):
        for user in range(1, 9):
            t = int((start + dt.timedelta(days=day, minutes=user * 7)).timestamp())
            for k in range(4):  # browse three items of twelve, cart one of them
                item = 1000 + (user * 3 + day * 5 + k) % 12
                rows.append((user, item, item % 6, "cart" if k == 3 else "pv", t + k * 40))
    path = tmp_path / "UserBehavior.csv"
    path.write_text("".join(f"{u},{i},{c},{kind},{t}\n" for u, i, c, kind, t in rows))
    settings = settings_in(tmp_path)
    import_source(spark, settings, "taobao", str(path))
    first, last = dt.date(2017, 11, 25), dt.date(2017, 11, 28)
    clean_dates(spark, settings, first, last)

    figures = denoise_proxy(spark, settings, first, dt.date(2017, 11, 26), "taobao")
    log = pd.DataFrame(rows, columns=["user", "item", "category", "kind", "t"])
    clicks = log[(log["kind"] == "pv") & (log["t"] < int((start + dt.timedelta(days=2)).timestamp()) - 8 * 3600)]
    # Items differ within a session: a later click on the same item is in another session.
    confirmed = [any((later.t > c.t) & (later.t <= c.t + 7 * 86_400) for later in log[(log.user == c.user) & (log.item == c.item)].itertuples())
                 for c in clicks.itertuples()]
    assert (figures["clicks"], figures["confirmed"]) == (len(clicks), sum(confirmed)) and 0 < sum(confirmed) < len(clicks), figures["evidence"]
    assert sum(figures["evidence"].values()) == figures["clicks"]

    # Each kind alone: a later cart of the item, a later click on it (in another session).
    def later(c, kind: str) -> bool:
        theirs = log[(log.user == c.user) & (log.item == c.item) & (log.kind == kind)]
        return bool(((theirs.t > c.t) & (theirs.t <= c.t + 7 * 86_400)).any())
    expected = {"action": sum(later(c, "cart") for c in clicks.itertuples()), "return": sum(later(c, "pv") for c in clicks.itertuples())}
    assert {kind: f["confirmed"] for kind, f in figures["by_evidence"].items()} == expected and all(expected.values())
    # Without dwell no fixed threshold flags a click; the flags are the bursts'.
    assert all(f["rate_all"] == 0 for f in figures["fixed"].values())
    assert proxy_lines(figures)[0].startswith(f"denoise proxy 2017-11-25..2017-11-26 (taobao): {len(clicks)} clicks")
    # The same through the CLI; a range without clicks is a clear error, not zeros.
    by_cli = invoke("evaluate", ["denoise", "--proxy", "--start", str(first), "--end", "2017-11-26", "--source", "taobao", "--json"], settings)
    assert {k: v for k, v in by_cli.items() if k != "seconds"} == figures
    with pytest.raises(MissingInputError, match="no clicks of taobao in silver from 2017-12-10 to 2017-12-11"):
        denoise_proxy(spark, settings, dt.date(2017, 12, 10), dt.date(2017, 12, 11), "taobao")
