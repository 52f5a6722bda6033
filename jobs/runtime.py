"""What every job entry point shares: common arguments, settings, the summary line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pipelines.config import ConfigError, Settings, load_settings
from pipelines.errors import PipelineError


def job_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    add_settings_arguments(parser)
    return parser


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", help="configuration environment (infra/conf/<env>.toml); default SEQLAKE_ENV or local")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one configuration key, e.g. --set spark.master=local[2]",
    )


def settings_from(args: argparse.Namespace, **shortcuts: Any) -> Settings:
    """Settings with --set overrides, plus job flags that name a key (None = not given)."""
    overrides = list(args.overrides) + [f"{k}={v}" for k, v in shortcuts.items() if v is not None]
    try:
        return load_settings(env=args.env, overrides=overrides)
    except ConfigError as exc:
        sys.exit(f"seqlake: configuration error: {exc}")


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from exc


def print_summary(job: str, figures: dict[str, Any], as_json: bool = False) -> None:
    """The one closing line of a job: `job: k=v ...`, or a JSON object when asked."""
    if as_json:
        print(json.dumps({"job": job, **figures}, default=str, sort_keys=False))
    else:
        print(f"{job}: " + " ".join(f"{k}={v}" for k, v in figures.items()), flush=True)


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    return parser.parse_args(list(argv) if argv is not None else None)


def run_job(job: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The job's figures, or exit status 1 with a one-line reason for a pipeline failure."""
    try:
        return work()
    except (PipelineError, ConfigError, ValueError) as exc:
        sys.exit(f"seqlake {job}: {exc}")


def add_date_range_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=iso_date, help="the night to run, YYYY-MM-DD")
    parser.add_argument("--start", type=iso_date, help="first night of a range run in one pass")
    parser.add_argument("--end", type=iso_date, help="last night of a range run in one pass")


def date_range(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[dt.date, dt.date]:
    """(start, end) from --date, or from --start and --end; a usage error otherwise."""
    if args.date and not (args.start or args.end):
        return args.date, args.date
    if args.start and args.end and not args.date:
        if args.end < args.start:
            parser.error(f"--end {args.end} is before --start {args.start}")
        return args.start, args.end
    parser.error("give --date D, or --start D1 and --end D2")
