"""The demo (`seqlake demo`): its settings, its days run through the real DAGs,
and what it prints after them.

The generated days run as Airflow runs them - `dag.test()` with SQLite,
embedded profile, each task its job's command in this process (one Spark
session for all of them): the days before the last through seqlake_backfill,
then the last day's night through seqlake_nightly, triggered at 02:00 of the
day after, which trains, gates, scores and reports. Some users are heavy
(DEMO_SETTINGS), so that their histories run past the long side the models
and the BSE sums read. The figures printed after the runs are those the jobs
recorded in the run ledger (ops/runs), the denoising and the BSE parity
measured as `seqlake evaluate` measures them, a feature read as `seqlake
features get` reads it, and where every output landed."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from deltalake import DeltaTable

from features.definitions import views_for
from features.store import latest_features
from pipelines.config import Settings, home
from pipelines.ctr.registry import champion_version, tracking_uri
from pipelines.lakehouse.files import delta_dataset, delta_rows
from pipelines.lakehouse.ledger import ledger_rows, newest_run, night_figures, run_nights
from pipelines.lakehouse.session import spark_session
from pipelines.lakehouse.tables import SCORES_CTR, SILVER_NOISE_METRICS, TABLES, table_uri
from pipelines.lakehouse.writes import read_date_partitions
from pipelines.stages.evaluate import bse_parity_of_day, denoise_quality

DAY = dt.timedelta(days=1)
DAGS = Path(__file__).resolve().parents[1] / "dags"
# The demo's own settings, for this process and (as SEQLAKE_* variables) the
# DAG's tasks: three days, the first night that has two labelled days before
# it to train on being the third; 1% of the users come back 30 times as often
# a day, and the long side is 128 behaviors, which the longest histories run
# past by the third night.
DEMO_SETTINGS = {"examples": {"train_len": 128},
                 "generator": {"days": 3, "heavy_user_share": 0.01, "heavy_user_activity": 30.0}}


def demo_settings(settings: Settings, root: Path, today: dt.date) -> Settings:
    """`settings` with the demo's roots under `root`, DEMO_SETTINGS, and
    generated days that end yesterday (so that a feature read now sees what
    the nights published)."""
    roots = {"lakehouse": root / "lakehouse", "landing": root / "landing", "truth": root / "truth", "reports": root / "reports"}
    start = today - DEMO_SETTINGS["generator"]["days"] * DAY
    sections = {**DEMO_SETTINGS, "generator": {**DEMO_SETTINGS["generator"], "start_date": start}}
    return settings.model_copy(update={
        **{k: str(v) for k, v in roots.items()},
        **{name: getattr(settings, name).model_copy(update=values) for name, values in sections.items()},
    })


def print_demo_summary(settings: Settings, nights: list[dt.date], runs: dict[dt.date, dict[str, TaskRun]]) -> dict[str, object]:
    """Print the nights' figures; the landed / bronze / rejected totals, whether
    they add up, and the last night's report."""
    lakehouse = settings.lakehouse
    spark = spark_session(settings, "seqlake-demo")
    print("== ingest: landing -> bronze/events + bronze/events_rejected (write, audit, publish)")
    print(f"   {'night':<12} {'landed':>9} {'bronze':>9} {'rejected':>9}  adds up  rejected by reason")
    totals = {"landed": 0, "bronze": 0, "rejected": 0}
    for night in nights:
        f = night_figures(lakehouse, "ingest", night)
        for key in totals:
            totals[key] += f[key]
        reasons = ", ".join(f"{k}={v}" for k, v in f["rejected_by_reason"].items()) or "-"
        check = "yes" if f["landed"] == f["bronze"] + f["rejected"] else "NO"
        print(f"   {night!s:<12} {f['landed']:>9,} {f['bronze']:>9,} {f['rejected']:>9,}  {check:<7}  {reasons}")

    print("== clean: noise flags measured against the generator's truth (seqlake evaluate denoise)")
    print(f"   {'night':<12} {'events':>9}  clicks by noise reason{'':<40} flags P / R / F1        "
          "best fixed threshold (hindsight) P / R / F1   F1 gain")
    for night in nights:
        metrics = read_date_partitions(spark, lakehouse, SILVER_NOISE_METRICS, night).collect()
        q = denoise_quality(spark, settings, night)
        reasons = ", ".join(f"{r['noise_reason'] or 'genuine'}={r['events']}" for r in
                            sorted(metrics, key=lambda r: r["noise_reason"] or "") if r["event_type"] == "click")
        o, h = q["overall"], q["hindsight_fixed"]
        print(f"   {night!s:<12} {sum(r['events'] for r in metrics):>9,}  {reasons:<62} "
              f"{o['precision']:.3f} / {o['recall']:.3f} / {o['f1']:.3f}   "
              f"{h['threshold_s']:>4} s: {h['precision']:.3f} / {h['recall']:.3f} / {h['f1']:.3f}      "
              f"{q['f1_gain_over_hindsight']:+.3f}")

    print("== clean: the flags against later evidence of interest, no truth needed (each run's clicks; seqlake evaluate denoise --proxy)")
    print(f"   {'night':<12} {'clicks of':<24} {'clicks':>7} {'confirmed':>9}  confirmed / all flag rate: flags, dwell < 5 s, "
          "and the fixed threshold at the flags' rate (lower is better; 1.0 is a random flagger)")
    for night in nights:
        clean = night_figures(lakehouse, "clean", night)
        p = (clean or {}).get("proxy")
        if not p or not p["confirmed"]:
            print(f"   {night!s:<12} " + ("no clean run ends here (a range run covers it)" if clean is None
                                          else "no evidence of interest after the clicks"))
            continue
        m, flags, five = p["matched_rate"], p["flags"], p["fixed"]["5s"]
        at_rate = "-" if m is None else f"dwell < {m['threshold_s']:.2f} s {m['ratio']:.3f}, flags minus it {m['flags_minus_fixed']:+.3f}"
        print(f"   {night!s:<12} {p['clicks_of']:<24} {p['clicks']:>7,} {p['confirmed']:>9,}  flags {flags['ratio']:.3f} "
              f"{flags['ratio_ci']}, dwell < 5 s {five['ratio']:.3f}; {at_rate}")

    print("== sequences, signatures (BSE) and examples of each run (the backfill's figures are of its last date)")
    print(f"   {'nights':<22} {'users':>7} {'behaviors':>10}  length p50/p90/p99/max  {'BSE version':<22} {'occupancy':>9}  "
          f"{'examples':>9} {'label rate':>10}")
    for last in sorted({max(r["dates"]) for r in ledger_rows(lakehouse, "sequences").to_pylist()}):
        nights_of_run = run_nights(newest_run(lakehouse, "sequences", last))
        span = " .. ".join(sorted({str(nights_of_run[0]), str(nights_of_run[-1])}))
        q, s, e = (night_figures(lakehouse, stage, last) for stage in ("sequences", "signatures", "examples"))
        lengths = "/".join(str(v) for v in q["length_p50_p90_p99_max"])
        print(f"   {span:<22} {q['users']:>7,} {q['behaviors']:>10,}  {lengths:<22} {s['version']:<22} "
              f"{s['bucket_occupancy']:>9.1%}  {e['examples']:>9,} {e['label_rate']:>10.2%}")

    print(f"== train ({settings.night.model} on Ray Train, {settings.night.train_window_days}-day window), gate on the "
          "night's own day, score the next day on Ray Data (the nightly DAG's nights)")
    for night in (n for n in nights if "train_model" in runs[n]):
        t, gate = night_figures(lakehouse, "train", night), night_figures(lakehouse, "models", night)
        s = night_figures(lakehouse, "score", night + DAY)
        trained = (f"v{t['version']} ({t['epochs']} epochs, valid AUC {t['best_valid_auc']:.4f})" if t
                   else f"not trained (train_model {runs[night]['train_model'].state})")
        gated = ("-" if not gate else f"AUC {gate['candidate_auc']:.4f} vs champion "
                 f"{gate['champion_auc'] if gate['champion_auc'] is not None else '-'}: "
                 f"{'promoted' if gate['promoted'] else 'kept v' + str(gate['champion'])}")
        scored = (f"{s['scores']:,} scores of {s['date']} by v{s['version']} ({s['scored_from_bse']:,} from BSE sums, "
                  f"{s['scored_end_to_end']:,} end to end)" if s else "no champion to score with")
        print(f"   {night!s:<12} {trained:<44} {gated:<46} {scored}")
    print(f"   champion: v{champion_version(settings)}; MLflow store {tracking_uri(settings)}")
    print("== candidates of each next day, from what the night published only (no event of the scored day)")
    for night in nights:
        c = night_figures(lakehouse, "candidates", night + DAY)
        if c:
            sources = ", ".join(f"{k}={v:,}" for k, v in c["by_source"].items())
            print(f"   {c['date']:<12} {c['candidates']:>8,} for {c['users']:,} users: {sources}; "
                  f"BSE sums under {c['embedding_version']}: {c['with_bse']:,}, none: {c['without_bse']:,}")
    print("== BSE vs end to end (seqlake evaluate bse): each scored day's candidates from their bucket sums and from the raw sequences")
    for night in nights:
        s = night_figures(lakehouse, "score", night + DAY)
        if s:
            b = bse_parity_of_day(settings, dt.date.fromisoformat(s["date"]), str(s["version"]))
            past = b["max_abs_diff_past_long_side"]
            print(f"   {b['date']:<12} v{b['version']} on {b['candidates']:,} rows: max |diff| {b['max_abs_diff']:.1e}; "
                  f"{b['users_past_long_side']} users past the long side of {b['long_side']} ({b['rows_past_long_side']:,} rows): "
                  f"max |diff| {'-' if past is None else f'{past:.1e}'}")

    scored = delta_rows(DeltaTable(table_uri(lakehouse, SCORES_CTR)), columns=["user_id"]) if Path(
        table_uri(lakehouse, SCORES_CTR)).is_dir() else None
    if scored is not None and scored.num_rows:
        user = int(min(scored.column("user_id").to_pylist()))
        print(f"== features get --user {user} (now: what the last night published; delta-rs, no Spark)")
        keys = {"user_id": [user]}
        f = latest_features(lakehouse, keys, views_for(keys)).to_pylist()[0]
        for name in ("user_stats__user_clicks", "user_stats__user_ctr", "user_sequence__length", "user_bse__version"):
            value = f.get(name)
            print(f"   {name:<28} {value[0] if isinstance(value, list) and value else value}")

    print("== outputs (Delta tables, read back with deltalake)")
    for name, spec in TABLES.items():
        uri = table_uri(lakehouse, spec)
        if not Path(uri).is_dir():
            continue
        table = DeltaTable(uri)
        rows = sum(a.num_rows for a in delta_dataset(table).to_batches(columns=[]))
        print(f"   {name:<24} version {table.version():>2}  {rows:>9,} rows  {uri}")
    print(f"   landing files: {settings.landing}/events/date=*/   truth (never read by the pipeline): {settings.truth}")
    reports = sorted(Path(settings.reports).glob("report-*.html"))
    print(f"== nightly reports (open in a browser): {', '.join(p.name for p in reports)} in {settings.reports}")
    print(f"   the last night's: {reports[-1] if reports else '-'}")
    return {**totals, "adds_up": totals["landed"] == totals["bronze"] + totals["rejected"],
            "report": str(reports[-1]) if reports else None}


def use_repository_airflow() -> str:
    """Point Airflow at the repository's DAGs and an AIRFLOW_HOME of its own
    (.cache/airflow, as the Makefile does) unless the caller chose others:
    `seqlake demo` run outside make would otherwise test DAGs that Airflow's
    default home does not hold. Must run before Airflow is imported."""
    os.environ.setdefault("AIRFLOW_HOME", str(home() / ".cache" / "airflow"))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(DAGS))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    return os.environ["AIRFLOW_HOME"]


class TaskRun(NamedTuple):
    state: str
    seconds: float | None


def airflow_dags(settings: Settings, overrides: Mapping[str, Mapping[str, object]]) -> dict[str, Any]:
    """The repository's DAGs, loaded after pointing their tasks at `settings`'
    roots and `overrides` ({section: {key: value}}) through SEQLAKE_* variables
    (the tasks read their settings from the environment), with Airflow's
    SQLite database migrated."""
    for key in ("lakehouse", "landing", "truth", "reports"):
        os.environ[f"SEQLAKE_{key.upper()}"] = getattr(settings, key)
    for section, values in overrides.items():
        for key, value in values.items():
            os.environ[f"SEQLAKE_{section.upper()}__{key.upper()}"] = str(value)
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS)).dags


def run_days_through_airflow(settings: Settings, days: list[dt.date]) -> dict[dt.date, dict[str, TaskRun]]:
    """dag.test() of seqlake_backfill over every day but the last (each data
    stage once over the range), then of seqlake_nightly for the last day's
    night: {day: {task: TaskRun}}. A night of the nightly DAG costs a minute or
    so of fixed cost a day; the backfill pays it once for the days before."""
    dags = airflow_dags(settings, DEMO_SETTINGS)
    earlier, last = days[:-1], days[-1]
    runs = {}
    if earlier:
        backfilled = dag_test(dags["seqlake_backfill"], f"seqlake_backfill {earlier[0]}..{earlier[-1]}",
                              dt.datetime.combine(last, dt.time(1), tzinfo=dt.UTC),
                              {"start": earlier[0].isoformat(), "end": earlier[-1].isoformat()})
        runs.update(dict.fromkeys(earlier, backfilled))
    runs[last] = nightly_dag_test(dags, last)
    return runs


def nightly_dag_test(dags: Mapping[str, Any], night: dt.date) -> dict[str, TaskRun]:
    """seqlake_nightly for `night`, triggered at 02:00 of the day after as its schedule does."""
    return dag_test(dags["seqlake_nightly"], f"seqlake_nightly, the night of {night}",
                    dt.datetime.combine(night + DAY, dt.time(2), tzinfo=dt.UTC))


def dag_test(dag: Any, title: str, logical_date: dt.datetime, conf: dict | None = None) -> dict[str, TaskRun]:
    """One dag.test() run: {task: TaskRun}; raises naming the failed tasks."""
    began = time.perf_counter()
    run = dag.test(logical_date=logical_date, run_conf=conf)
    tasks = {ti.task_id: TaskRun(str(ti.state), ti.duration) for ti in run.get_task_instances()}
    skipped = [t for t, task in tasks.items() if task.state == "skipped"]
    print(f"   {title}: {run.state} in {time.perf_counter() - began:5.0f} s; "
          f"{sum(task.state == 'success' for task in tasks.values())} tasks ran, skipped: {', '.join(skipped) or '-'}",
          flush=True)
    if run.state != "success":
        failed = [t for t, task in tasks.items() if task.state == "failed"]
        raise RuntimeError(f"{title} failed at {', '.join(failed)}: see the task logs above")
    return tasks


