"""seqlake forget: delete users' rows from every table and from its history
(pipelines.stages.forget), recording the request.

    seqlake forget --user U [--user U2 ...] [--by WHO] [--json]

Exits 0 with what it removed: rows per table, the versions its deletes
committed, the models trained on the users' data (tagged in the registry),
and by when no retained version holds them (forget.history_retention_hours).
"""

from __future__ import annotations

import argparse
import getpass
import socket

from jobs.cli import run_command
from pipelines.config import Settings
from pipelines.lakehouse.session import spark_session
from pipelines.stages.forget import forget_users


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", type=int, action="append", required=True, metavar="U", help="user_id (repeat for more)")
    parser.add_argument("--by", help="who asked, for the audit (default: this account and host)")


def run(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    requested_by = args.by or f"{getpass.getuser()}@{socket.gethostname()}"
    return forget_users(spark_session(settings, "seqlake-forget"), settings, args.user, requested_by)


if __name__ == "__main__":
    run_command("forget")
