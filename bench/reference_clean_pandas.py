"""Single-process pandas implementation of the clean stage's rules: the reference
bench/clean.py times Spark against. Same rules as pipelines/clickstream/
(sessions.py, denoise.py), with exact medians where Spark uses approximate ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.config import CleanSettings


def cleaned_events(bronze: pd.DataFrame, rules: CleanSettings) -> pd.DataFrame:
    events = bronze.sort_values(["landing_date", "ingest_ts", "source_file"], kind="stable")
    events = events.drop_duplicates("event_id", keep="first")
    events = events.sort_values(["user_id", "ts", "event_id"], kind="stable", ignore_index=True)

    user_change = events["user_id"].ne(events["user_id"].shift())
    gap = events["ts"].diff()
    starts = user_change | (gap > rules.session_gap_minutes * 60_000)
    session_start = events["ts"].where(starts).ffill().astype("int64")
    events["session_id"] = events["user_id"].astype(str) + "-" + session_start.astype(str)

    next_ts = events.groupby("session_id", sort=False)["ts"].shift(-1)
    derived = np.minimum(next_ts - events["ts"], rules.max_derived_dwell_minutes * 60_000)
    is_click = events["event_type"].eq("click")
    observed = events["dwell_ms"].astype("float64")
    events["dwell_source"] = np.where(
        is_click & observed.notna(), "observed", np.where(is_click & derived.notna(), "derived", None)
    )
    events["dwell_ms"] = np.where(is_click, observed.fillna(derived), np.nan)

    clicks = events[is_click].copy()
    clicks["noise_reason"] = _click_flags(clicks, rules)
    events["noise_reason"] = None
    events.loc[clicks.index, "noise_reason"] = clicks["noise_reason"]
    return events


def _click_flags(clicks: pd.DataFrame, rules: CleanSettings) -> pd.Series:
    k = rules.prior_clicks
    read = clicks[clicks["dwell_ms"] > 0]
    log_speed = np.log(read["content_length"] * 1000.0 / read["dwell_ms"])
    log_dwell = np.log(read["dwell_ms"])
    pop_speed, pop_dwell = np.nanmedian(log_speed), np.nanmedian(log_dwell)
    per_user = pd.DataFrame({"user_id": read["user_id"], "s": log_speed, "d": log_dwell}).groupby("user_id")
    stats = per_user.agg(s_med=("s", "median"), s_n=("s", "count"), d_med=("d", "median"), d_n=("d", "count"))
    speed = np.exp((stats["s_med"].fillna(0) * stats["s_n"] + pop_speed * k) / (stats["s_n"] + k))
    typical = np.exp((stats["d_med"].fillna(0) * stats["d_n"] + pop_dwell * k) / (stats["d_n"] + k))
    user_speed = clicks["user_id"].map(speed)
    user_typical = clicks["user_id"].map(typical)
    needed = (clicks["content_length"] * 1000.0 / user_speed).fillna(user_typical)
    short = clicks["dwell_ms"] < np.maximum(rules.dwell_floor_s * 1000.0, needed * rules.min_read_fraction)

    gap = clicks.groupby("user_id", sort=False)["ts"].diff()
    rhythm = gap.groupby(clicks["user_id"]).quantile(0.75) * rules.burst_rhythm_fraction
    burst_gap = np.minimum(rules.burst_max_gap_s * 1000.0, clicks["user_id"].map(rhythm))
    new_run = gap.isna() | (gap > burst_gap)
    run = new_run.cumsum()
    in_burst = run.map(run.value_counts()) >= rules.burst_min_clicks

    day_gap = clicks.groupby(["user_id", "event_date"], sort=False)["ts"].diff()
    keys = [clicks["user_id"], clicks["event_date"]]
    day_clicks = clicks.groupby(keys)["ts"].transform("size")
    cv = day_gap.groupby(keys).transform("std") / day_gap.groupby(keys).transform("mean")
    bot = (day_clicks > rules.bot_max_daily_clicks) | (
        (day_clicks >= rules.bot_min_clicks) & (cv < rules.bot_max_gap_cv)
    )
    return pd.Series(
        np.select([bot, in_burst, short], ["bot", "burst", "short_dwell"], None), index=clicks.index
    )
