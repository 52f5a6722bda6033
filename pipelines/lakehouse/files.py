"""File I/O on local folders and object stores alike, through pyarrow's filesystems."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pyarrow import fs

from pipelines.lakehouse.tables import TableSpec, table_uri

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    from deltalake import DeltaTable


def native_uri(uri: str) -> str:
    """The URI as pyarrow and delta-rs name it: Hadoop's s3a:// bucket is their s3://."""
    return uri.replace("s3a://", "s3://", 1)


def filesystem(uri: str) -> tuple[fs.FileSystem, str]:
    return fs.FileSystem.from_uri(native_uri(uri))


def parquet_dataset(uris: list[str]) -> ds.Dataset:
    """A dataset over Parquet files named by URI (a Delta table's file_uris),
    on one filesystem: a local folder's or an object store's."""
    import pyarrow.dataset as ds

    if not uris:
        raise ValueError("no files to read")
    store, _ = filesystem(uris[0])
    # The filesystem's paths: a local path, or an object store's bucket/key.
    paths = [uri.removeprefix("file://") if uri.startswith("file://") else uri.split("://", 1)[-1] for uri in uris]
    return ds.dataset(paths, format="parquet", filesystem=store)


def write_atomically(uri: str, payload: bytes) -> None:
    """Write to a temporary name then rename, so a killed run never leaves half a file."""
    filesystem_, path = filesystem(uri)
    folder, name = path.rsplit("/", 1)
    filesystem_.create_dir(folder, recursive=True)
    temporary = f"{folder}/.{name}.tmp"
    with filesystem_.open_output_stream(temporary, compression=None) as out:
        out.write(payload)
    filesystem_.move(temporary, path)


def delta_rows(table: DeltaTable, **options: Any) -> pa.Table:
    """`table.to_pyarrow_table(**options)`, its files read through pyarrow's own filesystem (see delta_dataset)."""
    return table.to_pyarrow_table(filesystem=_arrow_filesystem(table), **options)


def delta_dataset(table: DeltaTable, **options: Any) -> ds.Dataset:
    """`table.to_pyarrow_dataset(**options)`, its files read through pyarrow's own
    filesystem: delta-rs's default is a Python filesystem handler whose scanner
    threads can outlive a short process and abort it at exit ("terminate called
    without an active exception": about one exit in four with deltalake 1.6 and
    pyarrow 26, measured here)."""
    return table.to_pyarrow_dataset(filesystem=_arrow_filesystem(table), **options)


def _arrow_filesystem(table: DeltaTable) -> fs.FileSystem:
    filesystem_, path = fs.FileSystem.from_uri(table.table_uri)
    return fs.SubTreeFileSystem(path, filesystem_)


def landing_dates(landing: str) -> list[dt.date]:
    """The dates that have a landing folder (events/date=YYYY-MM-DD), oldest first."""
    filesystem_, path = filesystem(f"{landing.rstrip('/')}/events")
    infos = filesystem_.get_file_info(fs.FileSelector(path, allow_not_found=True))
    return sorted(
        dt.date.fromisoformat(info.base_name.removeprefix("date="))
        for info in infos
        if info.type == fs.FileType.Directory and info.base_name.startswith("date=")
    )


def delta_table(lakehouse: str, table: TableSpec, version: int | None = None) -> DeltaTable:
    """delta-rs's handle on the catalog table `table` of `lakehouse`, at `version` (default: the newest)."""
    from deltalake import DeltaTable

    return DeltaTable(native_uri(table_uri(lakehouse, table)), version=version)


def partitions(lakehouse: str, table: TableSpec) -> list[dict[str, str | None]]:
    """The partition values of `table` (read from the Delta log); none when the table does not exist yet."""
    from deltalake.exceptions import TableNotFoundError

    try:
        return delta_table(lakehouse, table).partitions()
    except TableNotFoundError:
        return []


def landing_ready(landing: str, day: dt.date, marker: str | None, settled: dt.timedelta = dt.timedelta(0),
                  now: dt.datetime | None = None) -> bool:
    """The landing folder of `day` is complete: it holds data files and
    `marker`, or without a marker, no file in it changed within `settled` of
    `now` (default: the current time)."""
    filesystem_, path = filesystem(f"{landing.rstrip('/')}/events/date={day.isoformat()}")
    infos = [i for i in filesystem_.get_file_info(fs.FileSelector(path, allow_not_found=True)) if i.type == fs.FileType.File]
    if not any(not i.base_name.startswith(("_", ".")) for i in infos):
        return False
    if marker is not None:
        return marker in {i.base_name for i in infos}
    newest = max(i.mtime for i in infos)
    return (now or dt.datetime.now(dt.UTC)) - newest.astimezone(dt.UTC) >= settled
