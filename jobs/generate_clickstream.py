"""seqlake generate: write synthetic landing files and their truth (pipelines.synth)."""

from __future__ import annotations

import argparse

from jobs.cli import iso_date, run_command, settings_flag
from pipelines.config import Settings
from pipelines.synth.generate import generate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", help="write DIR/landing and DIR/truth instead of the configured roots")
    settings_flag(parser, "--users", "generator.users", int)
    settings_flag(parser, "--days", "generator.days", int)
    settings_flag(parser, "--start-date", "generator.start_date", iso_date)
    settings_flag(parser, "--seed", "generator.seed", int)
    settings_flag(parser, "--noise-scale", "generator.noise_scale", float)
    settings_flag(parser, "--content-length-coverage", "generator.content_length_coverage", float)
    settings_flag(parser, "--malformed-rate", "generator.malformed_rate", float)
    settings_flag(parser, "--workers", "generator.workers", int)


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    out = args.out.rstrip("/") if args.out else None
    landing, truth = (f"{out}/landing", f"{out}/truth") if out else (settings.landing, settings.truth)
    return generate(settings.generator, landing, truth)


if __name__ == "__main__":
    run_command("generate")
