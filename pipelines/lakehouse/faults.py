"""Named points right before and right after every commit a job makes, where
the kill tests (tests/chaos) end the job's process with SIGKILL.

Each commit runs inside `commit_point("<operation> <table>")`; its points are
"before <operation> <table>#<n>" and "after <operation> <table>#<n>", n
counting the process's commits of that name from 1. With SEQLAKE_COMMIT_TRACE
set to a file, a job appends each point it reaches there (the matrix of a
stage's points comes from one traced run); with SEQLAKE_KILL_AT set to a
point, the job kills itself there: its whole process group when it leads
one (its Spark JVM and Ray processes die with it, as on a lost machine),
else itself. Neither is set outside the tests: a point then costs a lookup.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
from collections.abc import Iterator

KILL_AT = "SEQLAKE_KILL_AT"
TRACE = "SEQLAKE_COMMIT_TRACE"
_reached: collections.Counter[str] = collections.Counter()


@contextlib.contextmanager
def commit_point(name: str) -> Iterator[None]:
    """The commit inside, between its named points."""
    _reached[name] += 1
    occurrence = _reached[name]
    _reach(f"before {name}#{occurrence}")
    yield
    _reach(f"after {name}#{occurrence}")


def _reach(point: str) -> None:
    if trace := os.environ.get(TRACE):
        with open(trace, "a", encoding="utf-8") as out:
            out.write(point + "\n")
    if os.environ.get(KILL_AT) == point:
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
