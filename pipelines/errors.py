"""Failures a job reports as a one-line reason (exit status 1), never as a traceback."""

from __future__ import annotations


class PipelineError(RuntimeError):
    """A job cannot go on without losing, doubling or overwriting data."""


class ConservationError(PipelineError):
    """Counts that must add up do not: something was lost or doubled."""


class OwnershipError(PipelineError):
    """A write would replace rows that another source or job wrote."""


class IncompleteRunError(PipelineError):
    """A table holds the writes of a run that did not finish; rerun that run."""


class MissingInputError(PipelineError):
    """An input the job needs (a landing folder, a table, an embedding version) is absent."""


class QualityGateFailed(PipelineError):
    """A table's new data failed its quality suite; nothing was published."""


class NothingToDo(Exception):
    """Tonight this job has nothing to do (not its cadence, no model yet): the
    CLI exits 99, which Airflow's BashOperator marks as skipped."""
