"""seqlake demo: generate a few days under var/demo and run the night's stages on them.

The stages run in this process and one Spark session, each through its
command (the nightly DAG runs the same commands as separate tasks); outputs
are real Delta tables.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from deltalake import DeltaTable

from jobs.cli import invoke, run_command
from pipelines.config import Settings, home
from pipelines.ctr.registry import champion_version, tracking_uri
from pipelines.lakehouse.files import landing_dates
from pipelines.lakehouse.tables import SCORES_CTR, TABLES, table_uri


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default="var/demo", help="demo output folder, relative to SEQLAKE_HOME or the repository (default var/demo)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    root = (home() / args.root).resolve()
    settings = settings.model_copy(
        update={"lakehouse": str(root / "lakehouse"), "landing": str(root / "landing"), "truth": str(root / "truth")}
    )
    started = time.perf_counter()
    # The demo owns its folder: start from nothing so reruns print the same figures.
    shutil.rmtree(root, ignore_errors=True)

    g = settings.generator
    print(f"== generate: {g.users} users, {g.days} days from {g.start_date}, seed {g.seed}, noise x{g.noise_scale}")
    generated = invoke("generate", [], settings)
    print(f"   {generated['events']:,} events in {generated['lines']:,} landing lines, "
          f"{generated['events_per_minute']:,} events/min")

    days = [str(day) for day in landing_dates(settings.landing)]
    print("== ingest: landing -> bronze/events + bronze/events_rejected")
    print(f"   {'landing date':<12} {'landed':>9} {'bronze':>9} {'rejected':>9}  adds up  rejected by reason")
    totals = {"landed": 0, "bronze": 0, "rejected": 0}
    for day in days:
        f = invoke("ingest", ["--date", day], settings)
        for key in totals:
            totals[key] += f[key]
        reasons = ", ".join(f"{k}={v}" for k, v in f["rejected_by_reason"].items()) or "-"
        check = "yes" if f["landed"] == f["bronze"] + f["rejected"] else "NO"
        print(f"   {f['date']:<12} {f['landed']:>9,} {f['bronze']:>9,} {f['rejected']:>9,}  {check:<7}  {reasons}")

    print("== clean: bronze -> silver/events (dedup, sessions, dwell, noise flags), measured against truth")
    print(f"   {'event date':<12} {'events':>9} {'dups*':>6}  clicks by noise reason{'':<40} "
          f"flags P / R / F1        best fixed threshold (hindsight) P / R / F1   F1 gain")
    for day in days:
        c = invoke("clean", ["--date", day], settings)
        q = invoke("evaluate", ["denoise", "--date", day, "--json"], settings)
        reasons = ", ".join(f"{k}={v}" for k, v in c["clicks_by_reason"].items())
        o, h = q["overall"], q["hindsight_fixed"]
        print(f"   {c['date']:<12} {c['events_of_date']:>9,} {c['duplicates_dropped']:>6,}  {reasons:<62} "
              f"{o['precision']:.3f} / {o['recall']:.3f} / {o['f1']:.3f}   "
              f"{h['threshold_s']:>4} s: {h['precision']:.3f} / {h['recall']:.3f} / {h['f1']:.3f}      "
              f"{q['f1_gain_over_hindsight']:+.3f}")
    print("   * duplicates dropped in the look-back window the run rewrote")

    print("== sequences: silver -> gold/user_sequences (genuine behaviors, newest last, capped)")
    print(f"   {'as of':<12} {'mode':<12} {'users':>7} {'behaviors':>10}  length p50 / p90 / p99 / max")
    for day in days:
        q = invoke("sequences", ["--date", day], settings)
        p50, p90, p99, longest = q["length_p50_p90_p99_max"]
        print(f"   {q['date']:<12} {q['mode']:<12} {q['users']:>7,} {q['behaviors']:>10,}  {p50} / {p90} / {p99} / {longest}")

    b = settings.bse
    print(f"== signatures (BSE): {b.signatures} SimHash functions x {b.bits} bits over "
          f"{b.embedding_dim}-d '{b.bootstrap_version}' item embeddings -> gold/user_bse")
    print(f"   {'as of':<12} {'items':>7} {'users':>7} {'behaviors':>10} {'buckets':>9}  occupancy")
    for day in days:
        s = invoke("signatures", ["--date", day], settings)
        print(f"   {s['date']:<12} {s['items']:>7,} {s['users']:>7,} {s['behaviors_hashed']:>10,} "
              f"{s['occupied_buckets']:>9,}  {s['bucket_occupancy']:.1%} of {b.signatures} x {1 << b.bits} per user")

    print("== examples: one per shown slot (bots' impressions left out), features as of the day before "
          "-> gold/training_examples")
    print(f"   {'date':<12} {'features as of':<15} {'examples':>9}  {'by label mode':<24} {'bot impr. left out':>18} "
          f"{'label rate':>11} {'with history':>13}  mean long length")
    for day in days:
        e = invoke("examples", ["--date", day], settings)
        modes = ", ".join(f"{k}={v:,}" for k, v in e["examples_by_mode"].items()) or "-"
        print(f"   {e['date']:<12} {e['features_as_of']:<15} {e['examples']:>9,}  {modes:<24} "
              f"{e['excluded_bot_impressions']:>18,} {e['label_rate']:>11.2%} {e['with_history']:>13.1%}  "
              f"{e['mean_long_len']}")

    first_labelled, last = days[1], days[-1]
    train_end = days[-2]
    print(f"== train on Ray ({settings.train.workers} workers), {first_labelled}..{train_end} "
          f"(the last held out for early stopping), evaluate and gate on {last}")
    print(f"   {'model':<10} {'version':>7} {'epochs':>6} {'valid AUC':>9}  {'AUC':>6} {'GAUC':>6} {'logloss':>7} "
          f"{'oracle AUC':>10} {'model/oracle':>12}  gate")
    trained = {}
    for model in ("sdim", "din"):
        t = invoke("train", ["--start", first_labelled, "--end", train_end, "--model", model], settings)
        g = invoke("models", ["gate", "--version", t["version"], "--date", last], settings)
        q = invoke("evaluate", ["model", "--version", t["version"], "--date", last, "--json"], settings)
        trained[model] = t["version"]
        verdict = "promoted (champion)" if g["promoted"] else f"kept v{g['champion']} (AUC {g['champion_auc']})"
        print(f"   {model:<10} {t['version']:>7} {t['epochs']:>6} {t['best_valid_auc']:>9.4f}  {q['auc']:>6.4f} {q['gauc']:>6.4f} "
              f"{q['logloss']:>7.4f} {q['oracle_auc']:>10.4f} {q['model_over_oracle']:>12.3f}  {verdict}")
    print(f"   champion: v{champion_version(settings)}; MLflow store {tracking_uri(settings)}")

    print(f"== score {last} on Ray Data: BSE buckets as of {train_end} under the champion's embeddings "
          "-> gold/candidates -> scores/ctr")
    s = invoke("signatures", ["--date", train_end], settings)
    c = invoke("candidates", ["--date", last], settings)
    r = invoke("score", ["--date", last], settings)
    sources = ", ".join(f"{k}={v:,}" for k, v in c["by_source"].items())
    print(f"   signatures '{s['version']}' as of {train_end}; {c['candidates']:,} candidates of {c['users']:,} users ({sources})")
    print(f"   scored {r['scores']:,} with v{r['version']} ({r['model']}, long side from {r['long_side']}): "
          f"mean {r['score_mean']:.4f}, min {r['score_min']:.4f}, max {r['score_max']:.4f}")

    user = first_scored_user(settings.lakehouse)
    moment = f"{last}T12:00:00"
    print(f"== features get --user {user} --as-of {moment} (delta-rs, no Spark)")
    f = invoke("features", ["get", "--user", str(user), "--as-of", moment, "--json"], settings)["features"]
    for name in ("user_stats__user_clicks", "user_stats__user_ctr", "user_sequence__length", "user_bse__version"):
        value = f.get(name)
        print(f"   {name:<28} {value[0] if isinstance(value, list) and value else value}")
    items = f.get("user_sequence__item_ids") or []
    print(f"   {'user_sequence__item_ids':<28} {len(items)} items, newest {items[-3:]}")

    print("== outputs (Delta tables, read back with deltalake)")
    for name, spec in TABLES.items():
        uri = table_uri(settings.lakehouse, spec)
        if not Path(uri).is_dir():
            continue
        table = DeltaTable(uri)
        rows = sum(a.num_rows for a in table.to_pyarrow_dataset().to_batches(columns=[]))
        print(f"   {name:<24} version {table.version():>2}  {rows:>9,} rows  {uri}")
    print(f"   landing files: {settings.landing}/events/date=*/   truth (never read by the pipeline): {settings.truth}")
    return {**totals, "adds_up": totals["landed"] == totals["bronze"] + totals["rejected"],
            "models": trained, "seconds": round(time.perf_counter() - started, 1)}


def first_scored_user(lakehouse: str) -> int:
    scores = DeltaTable(table_uri(lakehouse, SCORES_CTR)).to_pyarrow_table(columns=["user_id"])
    return int(min(scores.column("user_id").to_pylist()))


if __name__ == "__main__":
    run_command("demo")
