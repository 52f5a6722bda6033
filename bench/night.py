"""The whole night on N generated events, stage by stage against its Parquet I/O floor.

For each size (the largest is --events; 1M below it, and 10M too with --large),
generates one day of events in a fresh lakehouse (1% heavy users who come back
30 times as often, so that their histories pass sequences.max_len), then runs
the night's stages on it in one process and one Spark session, each through
the command the night runs (`jobs.cli.invoke`: the gates, the ledger and the
lease included): ingest -> clean -> sequences -> examples -> signatures (which
persists the projection SDIM trains with) -> train (SDIM, one epoch, the day
split by user) -> candidates of the next day -> score with the trained model.

For each stage it prints its time, the bytes of the tables it reads and of the
tables it publishes, its floor measured in the same session right after it -
a Spark Parquet read of those input files plus a Parquet read + write of its
output files (for ingest, of a Parquet copy of the landing records, the
landing being JSON) - and the ratio; then the night's time with and without
training and each stage's growth exponent between consecutive sizes
(log(t2 / t1) / log(n2 / n1); 1.0 is linear). Goals (issue 19): ingest <= 2x,
clean and every other Spark stage <= 3x, the 10M night without training under
15 minutes, every exponent <= 1.1.

    python bench/night.py [--events 10000000] [--large] [--no-train] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deltalake import DeltaTable  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402

from jobs.cli import invoke  # noqa: E402
from pipelines.clickstream.landing import landing_folder  # noqa: E402
from pipelines.config import Settings, load_settings  # noqa: E402
from pipelines.lakehouse.session import spark_session  # noqa: E402
from pipelines.lakehouse.tables import (  # noqa: E402
    BRONZE_EVENTS,
    BRONZE_EVENTS_REJECTED,
    GOLD_CANDIDATES,
    GOLD_ITEM_EMBEDDINGS,
    GOLD_ITEM_SIGNATURES,
    GOLD_ITEM_STATS,
    GOLD_TRAINING_EXAMPLES,
    GOLD_USER_BSE,
    GOLD_USER_SEQUENCES,
    GOLD_USER_STATS,
    SCORES_CTR,
    SILVER_EVENTS,
    SILVER_NOISE_METRICS,
    TableSpec,
    table_uri,
)
from pipelines.synth.generate import generate  # noqa: E402

HEAVY_SHARE, HEAVY_ACTIVITY = 0.01, 30.0
EVENTS_PER_USER_DAY = 48 * (1 - HEAVY_SHARE + HEAVY_SHARE * HEAVY_ACTIVITY)  # the generator's defaults
LANDING = "landing"
WARM_UP_EVENTS = 20_000


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    engine: str
    inputs: tuple[TableSpec | str, ...]
    outputs: tuple[TableSpec, ...]

    def argv(self, day: dt.date, version: str | None) -> tuple[str, list[str]]:
        next_day = (day + dt.timedelta(days=1)).isoformat()
        return {
            "ingest": ("ingest", ["--date", day.isoformat()]),
            "clean": ("clean", ["--date", day.isoformat()]),
            "sequences": ("sequences", ["--date", day.isoformat()]),
            "examples": ("examples", ["--date", day.isoformat()]),
            "train": ("train", ["--start", day.isoformat(), "--end", day.isoformat(), "--model", "sdim", "--epochs", "1"]),
            "signatures": ("signatures", ["--date", day.isoformat()]),
            "candidates": ("candidates", ["--date", next_day]),
            "score": ("score", ["--date", next_day, "--version", str(version)]),
        }[self.name]


STAGES = (
    Stage("ingest", "spark", (LANDING,), (BRONZE_EVENTS, BRONZE_EVENTS_REJECTED)),
    Stage("clean", "spark", (BRONZE_EVENTS,), (SILVER_EVENTS, SILVER_NOISE_METRICS)),
    Stage("sequences", "spark", (SILVER_EVENTS,), (GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS)),
    Stage("examples", "spark", (SILVER_EVENTS, GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS),
          (GOLD_TRAINING_EXAMPLES,)),
    Stage("signatures", "spark", (SILVER_EVENTS, GOLD_USER_SEQUENCES),
          (GOLD_ITEM_EMBEDDINGS, GOLD_ITEM_SIGNATURES, GOLD_USER_BSE)),
    Stage("train", "ray", (GOLD_TRAINING_EXAMPLES,), ()),
    Stage("candidates", "spark", (GOLD_USER_SEQUENCES, GOLD_USER_STATS, GOLD_ITEM_STATS, GOLD_USER_BSE),
          (GOLD_CANDIDATES,)),
    Stage("score", "ray", (GOLD_CANDIDATES,), (SCORES_CTR,)),
)


def live_files(settings: Settings, table: TableSpec) -> list[tuple[str, int]]:
    """(path, bytes) of the files in the table's current snapshot."""
    uri = table_uri(settings.lakehouse, table)
    if not Path(uri, "_delta_log").exists():
        return []
    paths = [uri.removeprefix("file://") for uri in DeltaTable(uri).file_uris()]
    return [(path, Path(path).stat().st_size) for path in paths]


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def floor_seconds(spark: SparkSession, inputs: list[list[str]], outputs: list[list[str]], scratch: Path) -> float:
    """A Parquet read of the input tables' files plus a Parquet read + write of
    the output tables' files, one table at a time (their schemas differ)."""
    read = sum(timed(lambda f=files: spark.read.parquet(*f).write.format("noop").mode("overwrite").save())
               for files in inputs)
    write = sum(timed(lambda f=files: spark.read.parquet(*f).write.mode("overwrite").parquet(str(scratch)))
                for files in outputs)
    return read + write


def night_at(spark: SparkSession, events: int, args: argparse.Namespace, work: Path) -> dict[str, object]:
    settings = load_settings(overrides=[
        f"lakehouse={work / 'lakehouse'}", f"landing={work / 'landing'}", f"truth={work / 'truth'}",
        f"reports={work / 'reports'}", f"generator.users={max(round(events / EVENTS_PER_USER_DAY), 100)}",
        "generator.days=1", f"generator.heavy_user_share={HEAVY_SHARE}", f"generator.heavy_user_activity={HEAVY_ACTIVITY}",
        f"sequences.max_len={args.max_len}",
    ])
    day = settings.generator.start_date
    generated = generate(settings.generator, settings.landing, settings.truth)
    landing_parquet = str(work / "landing_parquet")
    spark.read.json(landing_folder(settings.landing, day)).write.parquet(landing_parquet)
    landing_bytes = sum(f.stat().st_size for f in Path(landing_folder(settings.landing, day)).rglob("*") if f.is_file())

    def files(tables: tuple[TableSpec | str, ...]) -> tuple[list[list[str]], int]:
        """The files of each table that has any, and their bytes."""
        found = [[(str(p), p.stat().st_size) for p in Path(landing_parquet).glob("*.parquet")] if t == LANDING
                 else live_files(settings, t) for t in tables]
        return [[path for path, _ in table] for table in found if table], sum(size for table in found for _, size in table)

    figures: dict[str, dict[str, float]] = {}
    version: str | None = None
    for stage in STAGES:
        if not args.train and stage.name in ("train", "score"):
            continue
        command, argv = stage.argv(day, version)
        started = time.perf_counter()
        result = invoke(command, argv, settings)
        seconds = time.perf_counter() - started
        version = str(result.get("version", version)) if stage.name == "train" else version
        inputs, in_bytes = files(stage.inputs)
        outputs, out_bytes = files(stage.outputs)
        if stage.name == "ingest":
            in_bytes = landing_bytes
        row = {"seconds": round(seconds, 2), "input_bytes": in_bytes, "output_bytes": out_bytes}
        if stage.name != "train":
            floor = floor_seconds(spark, inputs, outputs, work / "floor_out")
            row |= {"floor_seconds": round(floor, 2), "ratio": round(seconds / floor, 2)}
        figures[stage.name] = row
        print(f"   {stage.name:<11} {seconds:8.1f} s  in {in_bytes / 2**20:9.1f} MiB  out {out_bytes / 2**20:9.1f} MiB"
              + (f"  floor {row['floor_seconds']:7.2f} s  ratio {row['ratio']:5.2f}" if "ratio" in row else ""), flush=True)
    capped = spark.read.format("delta").load(table_uri(settings.lakehouse, GOLD_USER_SEQUENCES)) \
        .where(f"length >= {args.max_len}").select("user_id").distinct().count()
    return {"events": generated["events"], "users_at_max_len": capped, "stages": figures,
            "night_seconds": round(sum(r["seconds"] for r in figures.values()), 1),
            "night_without_training_seconds": round(sum(r["seconds"] for s, r in figures.items() if s != "train"), 1)}


def size_label(events: int) -> str:
    return f"{events // 1_000_000}M" if events >= 1_000_000 and events % 1_000_000 == 0 else str(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events of the largest night")
    parser.add_argument("--large", action="store_true", help="also 100M events (sizes 1M, 10M, 100M)")
    parser.add_argument("--sizes", help="comma-separated event counts instead (e.g. 100000,1000000)")
    parser.add_argument("--max-len", type=int, default=100, help="sequences.max_len, which the heavy users' days pass")
    parser.add_argument("--no-train", dest="train", action="store_false", help="leave out training and scoring")
    parser.add_argument("--no-warm-up", dest="warm_up", action="store_false",
                        help=f"leave out the first night on {WARM_UP_EVENTS:,} events, which is not reported")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args()
    largest = 100_000_000 if args.large else args.events
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else \
        sorted({n for n in (1_000_000, 10_000_000, largest) if n <= largest})

    spark = spark_session(load_settings(), "seqlake-bench-night")
    results: dict[str, dict[str, object]] = {}
    # A night on few events first, not reported: the first night of a process pays
    # for its JIT, Delta's and Great Expectations' first use and Ray's start.
    runs = [(WARM_UP_EVENTS, False)] * args.warm_up + [(events, True) for events in sizes]
    for events, reported in runs:
        work = Path(tempfile.mkdtemp(prefix="seqlake-bench-night-", dir=scratch_folder()))
        print(f"== night of {events:,} events (in {work})", flush=True)
        try:
            r = night_at(spark, events, args, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not reported:
            print("   (warm-up, not reported)", flush=True)
            continue
        results[size_label(events)] = r
        print(f"   night {r['night_seconds']} s ({r['night_without_training_seconds']} s without training); "
              f"{r['events']:,} events generated, {r['users_at_max_len']} users' histories at sequences.max_len", flush=True)
    spark.stop()

    flat: dict[str, object] = {}
    for label, r in results.items():
        flat[f"{label}_events"] = r["events"]
        flat[f"{label}_night_seconds"] = r["night_seconds"]
        flat[f"{label}_night_without_training_seconds"] = r["night_without_training_seconds"]
        for stage, row in r["stages"].items():
            flat |= {f"{label}_{stage}_{key}": value for key, value in row.items()}
    labels = list(results)
    for smaller, larger in zip(labels, labels[1:], strict=False):
        growth = math.log(results[larger]["events"] / results[smaller]["events"])
        print(f"growth {smaller} -> {larger} (goal <= 1.1):", flush=True)
        for stage in results[larger]["stages"]:
            exponent = math.log(results[larger]["stages"][stage]["seconds"] / results[smaller]["stages"][stage]["seconds"]) / growth
            flat[f"growth_{smaller}_{larger}_{stage}"] = round(exponent, 2)
            print(f"   {stage:<11} {exponent:5.2f}", flush=True)
    if args.json:
        print(json.dumps(flat))


def scratch_folder() -> str | None:
    """Scratch beside the repository (the machine's /tmp may be small)."""
    folder = Path(__file__).resolve().parents[1] / "var" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


if __name__ == "__main__":
    main()
