"""The SimHash projection as a persisted, versioned artifact (gold/bse_projections).

The random hyperplanes are drawn once per version, from a recorded seed, and
stored with their shape and a content hash; every consumer (the signatures
job, the CTR models, the scorer) loads them from the lakehouse instead of
drawing them again, since numpy does not promise the same random stream
across versions. The hash travels with every row built from the projection,
so a table and a model built from different hyperplanes never meet silently.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pyarrow as pa

from pipelines.bse.simhash import random_projection
from pipelines.config import BseSettings
from pipelines.errors import MissingInputError, PipelineError
from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.files import delta_rows, delta_table, native_uri
from pipelines.lakehouse.tables import GOLD_BSE_PROJECTIONS, table_uri


class ProjectionMismatchError(PipelineError):
    """The stored projection is not the one the configuration or a table expects."""


@dataclasses.dataclass(frozen=True)
class Projection:
    version: str
    matrix: np.ndarray  # float32 (dim, signatures, bits)
    seed: int
    sha256: str

    def require_hash(self, sha256: str, what: str) -> None:
        """Raise unless `what` was built from this projection."""
        if sha256 != self.sha256:
            raise ProjectionMismatchError(
                f"{what} was built with projection hash {sha256[:12]}, not with "
                f"{self.version!r} ({self.sha256[:12]}): rebuild it with this projection"
            )


def projection_sha256(matrix: np.ndarray) -> str:
    """Hash of the shape and the little-endian float32 values."""
    values = np.ascontiguousarray(matrix, dtype="<f4")
    return hashlib.sha256(repr(values.shape).encode() + values.tobytes()).hexdigest()


def stored_projection(lakehouse: str, rules: BseSettings) -> Projection:
    """The projection `rules.projection_version`, checked against its hash and
    against the configured shape and seed."""
    rows = _rows(lakehouse, rules.projection_version)
    if not rows:
        raise MissingInputError(
            f"no BSE projection {rules.projection_version!r} in {table_uri(lakehouse, GOLD_BSE_PROJECTIONS)}: "
            "run `seqlake signatures` once to create it"
        )
    if len({r["sha256"] for r in rows}) > 1:
        raise ProjectionMismatchError(f"projection {rules.projection_version!r} is stored twice with different values")
    row = rows[0]
    matrix = np.asarray(row["values"], dtype=np.float32).reshape(row["dim"], row["signatures"], row["bits"])
    if projection_sha256(matrix) != row["sha256"]:
        raise ProjectionMismatchError(f"projection {rules.projection_version!r}: its values do not match its hash")
    for key, stored in (("embedding_dim", row["dim"]), ("signatures", row["signatures"]), ("bits", row["bits"]),
                        ("projection_seed", row["seed"])):
        if getattr(rules, key) != stored:
            raise ProjectionMismatchError(
                f"bse.{key}: {getattr(rules, key)}, but projection {rules.projection_version!r} has {stored}; "
                "configure a new bse.projection_version to draw another"
            )
    return Projection(rules.projection_version, matrix, int(row["seed"]), row["sha256"])


def persisted_projection(lakehouse: str, rules: BseSettings) -> Projection:
    """The stored projection of `rules.projection_version`, drawn and stored first
    when this version does not exist yet (the only place a projection is drawn)."""
    if not _rows(lakehouse, rules.projection_version):
        matrix = random_projection(rules.embedding_dim, rules.signatures, rules.bits, rules.projection_seed)
        row = {
            "version": [rules.projection_version], "dim": [rules.embedding_dim], "signatures": [rules.signatures],
            "bits": [rules.bits], "seed": [rules.projection_seed], "values": [matrix.ravel().tolist()],
            "sha256": [projection_sha256(matrix)],
        }
        # Imported here: executors import this module for the signatures' UDFs,
        # and their packed environment carries no deltalake (only drivers write).
        from deltalake import write_deltalake

        with commit_point(f"append {GOLD_BSE_PROJECTIONS.name}"):
            write_deltalake(
                native_uri(table_uri(lakehouse, GOLD_BSE_PROJECTIONS)), pa.table(row, schema=GOLD_BSE_PROJECTIONS.schema),
                mode="append", partition_by=["version"],
            )
    return stored_projection(lakehouse, rules)


def _rows(lakehouse: str, version: str) -> list[dict]:
    from deltalake.exceptions import TableNotFoundError  # a driver's import (see above)

    try:
        table = delta_table(lakehouse, GOLD_BSE_PROJECTIONS)
    except TableNotFoundError:
        return []
    return delta_rows(table, filters=[("version", "=", version)]).to_pylist()
