"""The landing layout: one folder of JSON-lines files (gzipped or not) per landing
date, and reading it so that every file under it is accounted for.

A file under the folder (at any depth) is read line by line, or - when it
cannot be read (not the gzip its name says, a truncated gzip member, an I/O
error) - quarantined whole: one record naming the file and why, which ingest
rejects as `unreadable_file`, while the folder's other files are still read.
Files and folders whose name starts with `_` or `.` (the `_SUCCESS` marker, a
writer's `_temporary/`, checksum files) are skipped by the Hadoop convention
that Spark follows, and named in the figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from urllib.parse import urlparse

from py4j.protocol import Py4JError, Py4JJavaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.errors import MissingInputError

RECORDS_SCHEMA = "raw string, source_file string, landing_date date, file_error string"


@dataclasses.dataclass(frozen=True)
class LandingRead:
    """A landing folder's records - raw, source_file, landing_date, and
    file_error (set on the one record of a file that could not be read) - and
    how each of its files was taken."""

    records: DataFrame
    read_files: tuple[str, ...]
    unreadable_files: Mapping[str, str]
    skipped_files: tuple[str, ...]

    def figures(self) -> dict[str, object]:
        return {"files_read": len(self.read_files), "files_unreadable": dict(sorted(self.unreadable_files.items())),
                "files_skipped": list(self.skipped_files)}

    def failed_file(self, failure: Exception) -> str | None:
        """The file of this read that `failure` says Spark could not read (FAILED_READ_FILE), if it says so."""
        named = _same_file_key(_failed_path(failure))
        return next((f for f in self.read_files if named is not None and _same_file_key(f) == named), None)


def landing_folder(landing: str, day: dt.date) -> str:
    return f"{landing.rstrip('/')}/events/date={day.isoformat()}"


def landing_records(spark: SparkSession, landing: str, day: dt.date, unreadable: Mapping[str, str] | None = None) -> LandingRead:
    """Every line of every file under the landing folder of `day` but the
    `unreadable` ones ({file: why}), and a record for each of those. The
    reader (ingest) finds a file that fails with LandingRead.failed_file on
    its first pass over the lines, before it writes, and reads again without it."""
    unreadable = dict(unreadable or {})
    files, skipped = listed_files(spark, landing, day)
    readable = tuple(f for f in files if f not in unreadable)
    quarantined = spark.createDataFrame([(None, path, day, why) for path, why in sorted(unreadable.items())], RECORDS_SCHEMA)
    return LandingRead(_lines(spark, list(readable), day).unionByName(quarantined), readable, unreadable, skipped)


def unreadable_reason(failure: Py4JJavaError) -> str:
    """Why a file could not be read: the innermost cause's class and message,
    e.g. 'java.io.EOFException: Unexpected end of input stream'."""
    cause = failure.java_exception
    while cause.getCause() is not None:
        cause = cause.getCause()
    return str(cause.toString())


def listed_files(spark: SparkSession, landing: str, day: dt.date) -> tuple[list[str], tuple[str, ...]]:
    """(the data files under the landing folder of `day`, at any depth; the
    hidden ones, skipped), through Hadoop's file system (local folders and
    object stores alike). MissingInputError when there is no such folder."""
    folder = landing_folder(landing, day)
    jvm = spark.sparkContext._jvm
    root = jvm.org.apache.hadoop.fs.Path(folder)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        raise MissingInputError(f"no landing files for {day} at {folder}")
    prefix = len(fs.makeQualified(root).toString().rstrip("/")) + 1
    files, skipped = [], []
    listing = fs.listFiles(root, True)
    while listing.hasNext():
        path = listing.next().getPath().toString()
        hidden = any(part.startswith(("_", ".")) for part in path[prefix:].split("/"))
        (skipped if hidden else files).append(path)
    return sorted(files), tuple(sorted(skipped))


def _lines(spark: SparkSession, files: list[str], day: dt.date) -> DataFrame:
    if not files:
        return spark.createDataFrame([], RECORDS_SCHEMA)
    return spark.read.text(files).select(
        F.col("value").alias("raw"),
        F.col("_metadata.file_path").alias("source_file"),
        F.lit(day).alias("landing_date"),
        F.lit(None).cast("string").alias("file_error"),
    )


def _failed_path(failure: Exception) -> str | None:
    """The path of Spark's FAILED_READ_FILE in `failure`'s causes (classic PySpark raises it as a Py4JJavaError)."""
    if not isinstance(failure, Py4JJavaError):
        return None
    cause = failure.java_exception
    while cause is not None:
        if _condition(cause).startswith("FAILED_READ_FILE"):
            return str(cause.getMessageParameters().get("path"))
        cause = cause.getCause()
    return None


def _condition(throwable) -> str:
    """A Java throwable's Spark error condition, "" for one that has none."""
    try:
        return str(throwable.getCondition() or "")
    except Py4JError:
        return ""


def _same_file_key(path: str | None) -> tuple[str, str, str] | None:
    """A path's scheme, host and path, so that file:/a, file:///a and /a compare equal."""
    if path is None:
        return None
    parsed = urlparse(path)
    return (parsed.scheme or "file", parsed.netloc, parsed.path)
