"""The BSE bucket sums a training example or a candidate reads, as the nights published them.

For each as-of date the sums come from one publication of gold/user_bse (see
pipelines.lakehouse.publications): by default the date's first, i.e. what
its night hashed under the embeddings of the champion of that night (so the
embeddings behind an example's sums were trained before the example's date),
or the one under a given embedding version (the version the model to score
needs). The item signatures are read as the same run left them. The rows
carry the embedding version, the last labelled date its model saw and the
projection hash of their sums; a date without a publication leaves them null.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.bse.projection import Projection, stored_projection
from pipelines.bse.signatures import candidate_bucket_sums
from pipelines.config import Settings
from pipelines.ctr.registry import embeddings_trained_through
from pipelines.lakehouse.publications import Publication, publication_of, publications
from pipelines.lakehouse.tables import GOLD_ITEM_SIGNATURES, GOLD_USER_BSE, table_uri
from pipelines.lakehouse.writes import read_published, table_exists

PUBLISHED_SUMS_SCHEMA = "features_as_of date, bse_version string, bse_trained_through date, bse_projection_sha256 string"


def without_bucket_sums(rows: DataFrame) -> DataFrame:
    return rows.withColumns({
        "long_bse": F.lit(None).cast("array<float>"), "bse_version": F.lit(None).cast("string"),
        "bse_trained_through": F.lit(None).cast("date"), "bse_projection_sha256": F.lit(None).cast("string"),
    })


def published_bucket_sums(
    spark: SparkSession, settings: Settings, rows: DataFrame, as_of: Iterable[dt.date], embedding_version: str | None = None
) -> tuple[DataFrame, list[Publication]]:
    """`rows` (with features_as_of among `as_of`) plus `long_bse` and the
    publication it came from (pipelines.bse.signatures.candidate_bucket_sums),
    and the publications used. The projection hash of every sum and signature
    read must be the stored projection's (ProjectionMismatchError otherwise)."""
    lakehouse = settings.lakehouse
    if not table_exists(spark, lakehouse, GOLD_USER_BSE):
        return without_bucket_sums(rows), []
    published = publications(lakehouse, GOLD_USER_BSE)
    chosen = [p for day in sorted(set(as_of)) if (p := publication_of(published, day, embedding_version)) is not None]
    projection = stored_projection(lakehouse, settings.bse)
    user_bse = read_published(spark, lakehouse, GOLD_USER_BSE, chosen)
    signatures = read_published_signatures(spark, lakehouse, chosen)
    for frame, what in ((user_bse, GOLD_USER_BSE.name), (signatures, GOLD_ITEM_SIGNATURES.name)):
        require_projection(frame, projection, what)
    trained = {v: embeddings_trained_through(settings, v) for v in {p.embedding_version for p in chosen}}
    sums = spark.createDataFrame(
        [(p.day, p.embedding_version, trained[p.embedding_version], projection.sha256) for p in chosen], PUBLISHED_SUMS_SCHEMA
    )
    return candidate_bucket_sums(rows, sums, user_bse, signatures, settings.bse), chosen


def read_published_signatures(spark: SparkSession, lakehouse: str, published: list[Publication]) -> DataFrame:
    """The item signatures of each publication's embedding version, as the run that published it left them."""
    reads = sorted({(p.version_of(GOLD_ITEM_SIGNATURES), p.embedding_version) for p in published})
    if not reads:
        return spark.createDataFrame([], "item_id long, version string, codes array<int>, projection_sha256 string")
    uri = table_uri(lakehouse, GOLD_ITEM_SIGNATURES)
    frames = [spark.read.format("delta").option("versionAsOf", table_version).load(uri).where(F.col("version") == embeddings)
              for table_version, embeddings in reads]
    return functools.reduce(DataFrame.unionByName, frames)


def require_projection(rows: DataFrame, projection: Projection, what: str) -> None:
    """Raise unless every row of `rows` (a projection_sha256 column) was built from `projection`."""
    for row in rows.select("projection_sha256").distinct().limit(2).collect():
        projection.require_hash(row["projection_sha256"], what)
