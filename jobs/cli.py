"""The `seqlake` command: one subcommand per job.

Every job module defines `add_arguments(parser)` and `run(args, settings) ->
figures`; this module gives them the options they share (--env, --set,
--lakehouse, --json), builds the settings, runs the job and ends with its one
summary line (or one JSON object with --json). A job module is imported only
when its command runs, so `seqlake generate` does not load Spark.

Exit status: 0 success; with a one-line reason on stderr, 1 a job failure
that may pass on a retry, 2 a usage or configuration error, 3 a failed
quality gate, 4 a date to backfill first (pipelines.errors: 2-4 fail the same
way on every retry, so the DAG does not retry them), 5 another job is writing
the lakehouse (retried); 99 nothing to do tonight (Airflow marks the task
skipped). A command that writes holds the lakehouse's writer lease while it
runs (pipelines.lakehouse.lease), whether started here, by `seqlake run` or
by a DAG. `python -m jobs.X` and `spark-submit jobs/X.py`
run the same code through `run_command`.
"""

from __future__ import annotations

import _thread
import argparse
import atexit
import contextlib
import dataclasses
import datetime as dt
import importlib
import json
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NoReturn

import psutil

from pipelines.config import ConfigError, Settings, load_settings, with_overrides
from pipelines.errors import BrokenPastError, NothingToDo, PipelineError, QualityGateFailed
from pipelines.lakehouse.lease import writer_lease
from pipelines.masking import masked


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str
    # Whether a run with these arguments writes the lakehouse: it then holds the writer lease.
    writes: Callable[[argparse.Namespace], bool] = lambda args: False


def _always(args: argparse.Namespace) -> bool:
    return True


COMMANDS = {
    c.name: c
    for c in (
        Command("generate", "jobs.generate_clickstream", "write synthetic landing files and their truth"),
        Command("ingest", "jobs.ingest_events", "landing files of a date -> bronze/events + bronze/events_rejected", _always),
        Command("import", "jobs.import_source", "a public dataset (ebnerd, taobao, kuairand, mind) -> bronze", _always),
        Command("clean", "jobs.clean_events", "bronze/events -> silver/events: dedup, sessions, dwell, noise flags", _always),
        Command("sequences", "jobs.build_sequences", "silver -> gold/user_sequences and engagement statistics", _always),
        Command("signatures", "jobs.build_signatures", "BSE: item signatures and user bucket sums", _always),
        Command("examples", "jobs.build_examples", "gold/training_examples with features as of the day before", _always),
        Command("candidates", "jobs.build_candidates", "gold/candidates of a day: impressions and popular items, features of the day before", _always),
        Command("score", "jobs.score", "offline CTR scores of a day's candidates on Ray Data -> scores/ctr", _always),
        Command("features", "jobs.features", "feature-store reads: list the views, get a user's (and an item's) features"),
        Command("train", "jobs.train", "a CTR model on Ray Train, logged and registered in MLflow", _always),
        Command("models", "jobs.models", "registered models: list, promote, gate on a held-out day, export embeddings",
                lambda args: args.action != "list"),
        Command("forget", "jobs.forget", "delete users from every table and its history, audited (GDPR/CCPA requests)", _always),
        Command("evaluate", "jobs.evaluate", "measure a stage or a model (AUC, GAUC, logloss, oracle) against the truth"),
        Command("report", "jobs.report", "the nightly HTML report of a date, plots embedded"),
        Command("run", "jobs.night", "the whole night of a date (or a range) without Airflow, as the DAG runs it"),
        Command("demo", "jobs.demo", "generate a few days and run the night's stages on them"),
    )
}


SKIPPED = 99  # BashOperator's skip_on_exit_code
USAGE = 2
# Exit statuses that a retry cannot change, with what they mean: the DAG fails such a task at once.
NOT_RETRIED = {
    USAGE: "a usage or configuration error",
    QualityGateFailed.exit_status: "a failed quality gate",
    BrokenPastError.exit_status: "a date to backfill first",
}


class UsageError(Exception):
    """Arguments that make no sense together (exit status 2)."""


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; only `selected`'s own arguments are loaded."""
    parser = argparse.ArgumentParser(prog="seqlake", description="seqlake: a nightly user-behavior modeling pipeline.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS.values():
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        if command.name == selected:
            _common_arguments(sub)
            _job(command.name).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> NoReturn:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    sys.exit(_execute(args))


def exit_on_sigterm() -> None:
    """SIGTERM as SystemExit(143) in the main thread, so the job unwinds (a
    writer releases its lease, recording the failure) instead of vanishing:
    Airflow ends a task past its timeout so. A handler's exception raised while
    a finalizer runs is swallowed by the interpreter (py4j frees JVM objects in
    weakref callbacks, where a Spark job's main thread spends much time under
    load) and the job would go on as if never told to stop: such an exit is
    delivered again, from a watcher thread, once the finalizer has returned."""
    terminated = 128 + signal.SIGTERM
    swallowed = threading.Event()
    report_unraisable = sys.unraisablehook

    def raise_exit(signum: int, frame: object) -> NoReturn:
        atexit.register(end_children)
        raise SystemExit(128 + signum)

    def note_swallowed(report: Any) -> None:
        if isinstance(report.exc_value, SystemExit) and report.exc_value.code == terminated:
            swallowed.set()
        else:
            report_unraisable(report)

    def deliver_again() -> None:
        while swallowed.wait():
            time.sleep(0.05)  # past the finalizer that swallowed it
            swallowed.clear()
            _thread.interrupt_main(signal.SIGTERM)

    signal.signal(signal.SIGTERM, raise_exit)
    sys.unraisablehook = note_swallowed
    threading.Thread(target=deliver_again, name="sigterm-redelivery", daemon=True).start()


def end_children() -> None:
    """End the processes this job started (its Spark JVM, a local Ray). A job
    told to stop leaves them mid-work, where they do not always notice that
    their parent is gone and would linger, holding their memory, past the task."""
    children = psutil.Process().children(recursive=True)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, lingering = psutil.wait_procs(children, timeout=15)
    for child in lingering:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def run_command(name: str) -> NoReturn:
    """`python -m jobs.X ARGS` and `spark-submit jobs/X.py ARGS` as `seqlake name ARGS`."""
    main([name, *sys.argv[1:]])


def invoke(name: str, argv: Sequence[str], settings: Settings) -> dict[str, Any]:
    """Run command `name` in this process with `settings` (the demo, the
    nightly runner and the DAG's tasks chain jobs so), its --set and setting
    flags applied on top; exceptions propagate."""
    parser = build_parser(name)
    args = parser.parse_args([name, *argv])
    if args.env and args.env != settings.env:
        raise UsageError(f"--env {args.env}: this process runs with the settings of env {settings.env}")
    return _run_job(name, args, with_overrides(settings, [*args.overrides, *_flag_overrides(args)]))


def nights(args: argparse.Namespace) -> tuple[dt.date, dt.date]:
    """(start, end) from --date D, or from --start D1 --end D2."""
    if args.date and not (args.start or args.end):
        return args.date, args.date
    if args.start and args.end and not args.date:
        if args.end < args.start:
            raise UsageError(f"--end {args.end} is before --start {args.start}")
        return args.start, args.end
    raise UsageError("give --date D, or --start D1 and --end D2")


def add_night_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date", type=iso_date, help="the night to run, YYYY-MM-DD")
    parser.add_argument("--start", type=iso_date, help="first night of a range run in one pass")
    parser.add_argument("--end", type=iso_date, help="last night of a range run in one pass")


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from exc


def iso_instant(text: str) -> dt.datetime:
    """An ISO 8601 instant, UTC unless it says otherwise."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, got {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def model_version(text: str) -> str:
    """A registry version number, as a flag's type."""
    from pipelines.ctr.registry import checked_version

    try:
        return checked_version(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def source_name(text: str) -> str:
    """An import's source name, as a flag's type: it is stored in every row and names the rows an import replaces."""
    from pipelines.stages.imports import checked_source_name

    try:
        return checked_source_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def summary_line(job: str, figures: dict[str, Any], as_json: bool) -> str:
    """The one closing line of a job: `job: k=v ...`, or a JSON object."""
    if as_json:
        return masked(json.dumps({"job": job, **figures}, default=str))
    return masked(f"{job}: " + " ".join(f"{k}={v}" for k, v in figures.items()))


def _execute(args: argparse.Namespace) -> int:
    name = args.command
    try:
        settings = load_settings(env=args.env, overrides=[*args.overrides, *_flag_overrides(args)])
        figures = _run_job(name, args, settings)
    except NothingToDo as exc:
        print(summary_line(name, {"skipped": str(exc)}, getattr(args, "json", False)), flush=True)
        return SKIPPED
    except Exception as exc:
        status = exit_status(exc)
        if status == 1 and not isinstance(exc, ValueError):  # a bug: keep the traceback, end with the one-line reason
            print(masked(traceback.format_exc()), file=sys.stderr, end="")
        print(f"seqlake {name}: {failure_reason(exc)}", file=sys.stderr)
        return status
    print(summary_line(name, figures, getattr(args, "json", False)), flush=True)
    return 0


def exit_status(failure: BaseException) -> int:
    """The exit status of a job that failed with `failure` (the module's
    docstring); NothingToDo is no failure, its callers skip."""
    if isinstance(failure, UsageError | ConfigError):
        return USAGE
    if isinstance(failure, PipelineError):
        return failure.exit_status
    return 1


def failure_reason(failure: BaseException) -> str:
    """The one line a failed job ends with, its secrets masked."""
    return masked(_reason(failure))


def _reason(failure: BaseException) -> str:
    if isinstance(failure, UsageError):
        return f"usage error: {failure}"
    if isinstance(failure, ConfigError):
        return f"configuration error: {failure}"
    if isinstance(failure, PipelineError | ValueError):
        return str(failure)
    return f"failed: {type(failure).__name__}: {failure}"


def _common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", help="configuration environment (pipelines/conf/<env>.toml); default SEQLAKE_ENV or local")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one configuration key, e.g. --set spark.master=local[2]",
    )
    parser.add_argument("--lakehouse", dest="setting:lakehouse", metavar="URI", help="lakehouse root (default: configured)")
    parser.add_argument("--json", action="store_true", help="end with the figures as one JSON object")


def settings_flag(parser: argparse.ArgumentParser, flag: str, key: str, kind: Callable[[str], Any] = str, **kwargs: Any) -> None:
    """A job flag that is a shortcut for `--set key=VALUE`."""
    parser.add_argument(flag, dest=f"setting:{key}", type=kind, **kwargs)


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    return [
        f"{dest.removeprefix('setting:')}={value}"
        for dest, value in vars(args).items()
        if dest.startswith("setting:") and value is not None
    ]


def _run_job(name: str, args: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    if not COMMANDS[name].writes(args):
        return _job(name).run(args, settings)
    lease = dt.timedelta(seconds=settings.night.lease_seconds)
    with writer_lease(settings.lakehouse, f"seqlake {name} {_arguments_of(args)}", lease):
        return _job(name).run(args, settings)


def _arguments_of(args: argparse.Namespace) -> str:
    """The job's own arguments, for the lease log: what a stuck holder was doing."""
    shared = ("command", "json", "env", "overrides", "setting:lakehouse")
    return " ".join(f"{k.removeprefix('setting:')}={v}" for k, v in vars(args).items() if k not in shared and v not in (None, False, []))


def _job(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name].module)


if __name__ == "__main__":
    # `python -m jobs.cli` (the DAG's tasks): run the jobs.cli that the jobs
    # import, not this __main__ copy, whose UsageError they would not raise.
    from jobs import cli

    cli.main()
