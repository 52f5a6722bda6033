"""The Ray steps on a real cluster: a head and a second node on loopback, each
step submitted as the nightly DAG's cluster profile submits it (RayJobOperator:
the built wheel as the job's runtime environment), the tables on the loopback
object store, after the Spark stages ran there (conftest.cluster_nights)."""

from __future__ import annotations

import datetime as dt
import json
import time
import types

import boto3
import numpy as np
import pytest

from pipelines.lakehouse.files import delta_rows, delta_table
from pipelines.lakehouse.tables import GOLD_CANDIDATES, SCORES_CTR
from tests.conftest import REPO

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]


def _wheel() -> str:
    (wheel,) = (REPO / "dist").glob("seqlake-*.whl")
    return str(wheel)


def ray_step(ray_cluster, settings, task_id: str, night: dt.date, try_number: int = 1) -> dict:
    """One Ray step of the night as the nightly DAG's cluster profile builds it, run as one try of its task."""
    from dags.nightly import step_operator
    from pipelines.night import NIGHT

    (step,) = [s for s in NIGHT if s.task_id == task_id]
    rules = settings.night.model_copy(update={"profile": "cluster", "ray_jobs_address": ray_cluster.dashboard, "ray_wheel": _wheel()})
    operator = step_operator(step, settings.model_copy(update={"night": rules}), step.argv(str(night), str(night + dt.timedelta(days=1))))
    return operator.execute({"run_id": "scheduled__loopback", "ti": types.SimpleNamespace(try_number=try_number)})


def _objects(loopback, prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=loopback.endpoint)
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=loopback.bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def test_train_gate_and_score_run_as_ray_jobs_on_both_nodes(loopback, cluster_nights, ray_cluster, capsys):
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_actors, list_nodes

    from pipelines.ctr.artifacts import ModelFiles, load_model
    from pipelines.ctr.registry import downloaded_model
    from pipelines.scoring.batch_scoring import ModelReplica, scoring_plan

    settings, night = cluster_nights.cluster, cluster_nights.days[-1]
    scored_day = night + dt.timedelta(days=1)

    started = time.perf_counter()
    trained = ray_step(ray_cluster, settings, "train_model", night)
    seconds = {"train": round(time.perf_counter() - started, 1)}
    assert trained["version"] == "1" and trained["epochs"] >= 1
    # Two workers, one on each node (night.placement_strategy SPREAD), as Ray's own state says.
    actors = list_actors(address=ray_cluster.dashboard, detail=True, limit=1000)
    workers = [a for a in actors if "TrainWorker" in a.class_name]
    assert len({w.node_id for w in workers}) == 2, [(a.class_name, a.node_id) for a in actors]
    node_names = {n.node_id: next(r for r in ray_cluster.nodes if r in n.resources_total)
                  for n in list_nodes(address=ray_cluster.dashboard, detail=True)}
    # Checkpoints and the registered model's files are on the object store, not on a node.
    assert any(key.endswith(".pt") or "checkpoint" in key for key in _objects(loopback, "lakehouse/_train/"))
    assert any(key.endswith("model.safetensors") for key in _objects(loopback, "lakehouse/_mlflow/"))

    started = time.perf_counter()
    gated = ray_step(ray_cluster, settings, "gate_model", night)
    seconds["gate"] = round(time.perf_counter() - started, 1)
    assert gated["promoted"] is True, gated

    started = time.perf_counter()
    scores = ray_step(ray_cluster, settings, "score_candidates", night)
    seconds["score"] = round(time.perf_counter() - started, 1)
    with capsys.disabled():  # the run's record, in make test-cluster's output
        print("\n" + json.dumps({"train_workers_on": sorted(node_names[w.node_id] for w in workers), "seconds": seconds,
                                 "auc": gated["candidate_auc"], "scored": scores["scores"]}))
    assert scores["version"] == "1" and scores["scores"] == scores["candidates"] > 0

    # The same model scores the same candidates here, without Ray: the cluster's scores agree to 1e-5.
    files = ModelFiles.read(downloaded_model(settings, "1"))
    candidates = delta_rows(delta_table(settings.lakehouse, GOLD_CANDIDATES),
                            partitions=[("score_date", "=", str(scored_day))])
    plan = scoring_plan(load_model(files)[0], candidates.column("bse_version"), scores["embedding_version"])
    here = ModelReplica(files, "1", settings.examples.train_len, settings.examples.short_len, plan.embedding_version)(
        candidates.select(plan.columns()))
    there = delta_rows(delta_table(settings.lakehouse, SCORES_CTR), partitions=[("score_date", "=", str(scored_day))])
    keys = ["user_id", "item_id", "candidate_source"]
    joined = here.select([*keys, "score"]).join(there.select([*keys, "score"]).rename_columns([*keys, "published"]), keys)
    assert joined.num_rows == there.num_rows == candidates.num_rows
    assert np.max(np.abs(joined.column("score").to_numpy() - joined.column("published").to_numpy())) <= 1e-5

    # The same try submitted again (a worker that restarted) attaches to its job: no second job runs.
    again = ray_step(ray_cluster, settings, "score_candidates", night)
    assert again == scores
    jobs = [j for j in JobSubmissionClient(ray_cluster.dashboard).list_jobs() if "score_candidates" in (j.submission_id or "")]
    assert len(jobs) == 1
