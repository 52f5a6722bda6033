"""Score: offline CTR scores of a day's candidates -> scores/ctr.

Ray Data batch inference over gold/candidates of D with a pool of model
replicas (scoring.replicas actors, each asking for scoring.cpus_per_replica of
a CPU), streamed into a staging table, audited against the candidates, then
published in one Delta commit that replaces the date's partition of
scores/ctr (idempotent per date). The version defaults to the champion. An
SDIM scores from the candidates' BSE bucket sums when they were gathered under
its exported embeddings, else from the raw sequences (the figures say which).
Local Ray by default, RAY_ADDRESS (or ray.address) when given.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines.bse.projection import Projection, projection_sha256, stored_projection
from pipelines.config import Settings
from pipelines.ctr.artifacts import ModelFiles, load_model
from pipelines.ctr.base import CtrModel
from pipelines.ctr.registry import champion_version, downloaded_model, scoring_embedding_version
from pipelines.errors import MissingInputError, NothingToDo
from pipelines.lakehouse.faults import commit_point
from pipelines.lakehouse.files import delta_rows, delta_table, native_uri
from pipelines.lakehouse.ledger import Run, now_utc, recorded_run
from pipelines.lakehouse.session import ray_runtime, spark_session
from pipelines.lakehouse.tables import GOLD_CANDIDATES, SCORES_CTR, TableSpec
from pipelines.lakehouse.writes import date_range_predicate, read_table, table_exists
from pipelines.quality.bands import trailing_rates
from pipelines.quality.gate import publish_staged, staging_uri
from pipelines.quality.suites import SCORE_COVERAGE, scored_candidates, scores_ctr_suite
from pipelines.scoring.batch_scoring import ModelReplica, scoring_plan


def candidate_files(lakehouse: str, day: dt.date) -> tuple[list[str], DeltaTable]:
    table = delta_table(lakehouse, GOLD_CANDIDATES)
    uris = table.file_uris(partition_filters=[("score_date", "=", day.isoformat())])
    if not uris:
        raise MissingInputError(f"no candidates for {day}: run `seqlake candidates --date {day}` first")
    return uris, table


def publish_scores(spark: SparkSession, settings: Settings, staged_at: str, day: dt.date, **options: str) -> None:
    """Audit the staged scores of `day` against its candidates (every candidate
    scored once; the share scored within the band of the previous days'), then
    publish them in place of the date's."""
    lakehouse = settings.lakehouse
    past = (day - dt.timedelta(days=settings.quality.history_days), day - dt.timedelta(days=1))

    def of_dates(table: TableSpec, first: dt.date, last: dt.date) -> DataFrame:
        return read_table(spark, lakehouse, table).where(F.col("score_date").between(F.lit(first), F.lit(last)))

    history = []
    if table_exists(spark, lakehouse, SCORES_CTR):
        published = scored_candidates(of_dates(SCORES_CTR, *past), of_dates(GOLD_CANDIDATES, *past))
        history = trailing_rates(published, "score_date", SCORE_COVERAGE, *past)
    publish_staged(spark, staged_at, lakehouse, SCORES_CTR, date_range_predicate(SCORES_CTR, day), scores_ctr_suite(history),
                   day, day, validated=lambda staged: scored_candidates(staged, of_dates(GOLD_CANDIDATES, day, day)), **options)


def score_day(settings: Settings, day: dt.date, version: str | None = None) -> dict[str, object]:
    import ray.data

    version = version or champion_version(settings)
    if version is None:
        raise NothingToDo("no champion model yet: train one and promote it (`seqlake models promote V`), or pass --version")
    run = Run("score", [day], now_utc(), tables=(SCORES_CTR,))
    with recorded_run(settings.lakehouse, run) as figures:
        files = ModelFiles.read(downloaded_model(settings, version))
        model, _, _ = load_model(files)
        uris, candidates = candidate_files(settings.lakehouse, day)
        sums = delta_rows(candidates, columns=["bse_version", "bse_projection_sha256"], partitions=[("score_date", "=", day.isoformat())])
        plan = scoring_plan(model, sums.column("bse_version"), scoring_embedding_version(settings, version))
        if model.uses_projection:
            require_model_projection(model, stored_projection(settings.lakehouse, settings.bse), sums.column("bse_projection_sha256"))

        ray_runtime(settings.ray)
        rules = settings.scoring
        scored = ray.data.read_parquet([u.removeprefix("file://") for u in uris], columns=plan.columns()).map_batches(
            ModelReplica,
            fn_constructor_kwargs={"model_files": files, "version": version, "long_len": settings.examples.train_len,
                                   "short_len": settings.examples.short_len, "embedding_version": plan.embedding_version,
                                   "threads": 1},
            batch_size=rules.batch_size, batch_format="pyarrow", concurrency=rules.replicas, num_cpus=rules.cpus_per_replica,
        )
        batches = (batch for table in scored.iter_batches(batch_size=None, batch_format="pyarrow") for batch in table.to_batches())
        reader = pa.RecordBatchReader.from_batches(SCORES_CTR.schema, batches)
        # Write, audit, publish: the scores are staged, checked against the candidates, then published.
        staged_at = staging_uri(settings.lakehouse, SCORES_CTR, day, day)
        with commit_point(f"stage {SCORES_CTR.name}"):
            write_deltalake(native_uri(staged_at), reader, mode="overwrite", schema_mode="overwrite", partition_by=["score_date"])
        publish_scores(spark_session(settings, "seqlake-score"), settings, staged_at, day, userMetadata=run.commit_tag)
        written = delta_rows(
            delta_table(settings.lakehouse, SCORES_CTR),
            columns=["score"], partitions=[("score_date", "=", day.isoformat())]
        )
        scores = written.column("score")
        figures.update({
            "version": version, "model": model.config.model, "long_side": plan.long_side,
            "embedding_version": plan.embedding_version, "scored_from_bse": plan.from_bse, "scored_end_to_end": plan.end_to_end,
            "candidates": sums.num_rows, "scores": written.num_rows,
            "score_mean": round(pc.mean(scores).as_py() or 0.0, 5),
            "score_min": round(pc.min(scores).as_py() or 0.0, 5), "score_max": round(pc.max(scores).as_py() or 0.0, 5),
        })
    return figures


def require_model_projection(model: CtrModel, projection: Projection, candidate_hashes: pa.ChunkedArray) -> None:
    """The SDIM's own hyperplanes, the stored projection and every candidate's sums must be one projection."""
    projection.require_hash(projection_sha256(model.projection.numpy()), "the model")
    for sha256 in pc.unique(pc.drop_null(candidate_hashes)).to_pylist():
        projection.require_hash(sha256, "the candidates' bucket sums")
