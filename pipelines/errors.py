"""Failures a job reports as a one-line reason, never as a traceback.

Each kind carries the exit status the CLI ends with, so that an orchestrator
can tell a failure worth retrying (1: a lost executor, a store that did not
answer) from one that fails the same way every time: a failed quality gate
(3) or a date whose input must be rebuilt first (4). A lakehouse that another
job is writing (5) is retried. Usage and configuration errors exit 2
(jobs/cli.py).
"""

from __future__ import annotations


class PipelineError(RuntimeError):
    """A job cannot go on without losing, doubling or overwriting data."""

    exit_status = 1


class ConservationError(PipelineError):
    """Counts that must add up do not: something was lost or doubled."""


class OwnershipError(PipelineError):
    """A write would replace rows that another source or job wrote."""


class SchemaMismatchError(PipelineError):
    """A table lacks a column the catalog requires: it was not made by this
    version of the pipeline, and nothing would say what its old rows hold."""


class IncompleteRunError(PipelineError):
    """A table holds the writes of a run that did not finish; rerun that run."""


class MissingInputError(PipelineError):
    """An input the job needs (a landing folder, a table, an embedding version) is absent."""


class QualityGateFailed(PipelineError):
    """A table's new data failed its quality suite; nothing was published.
    Rerunning on the same data fails the same way: not retried."""

    exit_status = 3


class BrokenPastError(PipelineError):
    """A date the run needs was never ingested, or an earlier night of the
    stage did not finish: the run would publish a broken day. Not retried:
    the message names the backfill that heals it."""

    exit_status = 4


class LakehouseBusy(PipelineError):
    """Another job holds the lakehouse's writer lease (pipelines.lakehouse.lease).
    Its own exit status, retried: the holder is usually done by the next try."""

    exit_status = 5


class NothingToDo(Exception):
    """Tonight this job has nothing to do (not its cadence, no model yet): the
    CLI exits 99, which Airflow's BashOperator marks as skipped."""
