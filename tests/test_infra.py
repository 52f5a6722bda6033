"""infra/: what a deployment applies, checked here as far as this machine can.

The Kubernetes manifests against the Kubernetes API's own schemas
(kubernetes-validate, strict: an unknown field fails); the KubeRay resources'
pod templates the same way (no package from the registries reachable here
carries the KubeRay CRD schemas, so the RayCluster and RayJob fields around
those templates are only parsed); the Dockerfile with hadolint; the Compose
file against the Compose specification's JSON schema (make setup fetches it);
the settings each deployment gives seqlake through its environment, loaded as
seqlake loads them. The Spark properties files run for real elsewhere: local.conf
under test_spark_submit, standalone.conf under make test-cluster.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from pipelines.config import Settings, load_settings
from tests.conftest import REPO

INFRA = REPO / "infra"
KUBERNETES_VERSION = "1.31"
COMPOSE_SCHEMA = REPO / ".cache" / "schemas" / "docker-compose" / "compose" / "config" / "compose_spec.json"
TEMPLATE_VALUES = {"JOB": "clean_events", "ARGS": "--date=2026-11-03", "RUN": "clean-2026-11-03",
                   "COMMAND": "score --date 2026-11-04"}


def rendered(path: Path) -> list[dict]:
    """The documents of a manifest template, its ${NAME}s filled as envsubst fills them."""
    text = re.sub(r"\$\{(\w+)\}", lambda m: TEMPLATE_VALUES[m.group(1)], path.read_text())
    return [doc for doc in yaml.safe_load_all(text) if doc]


def pod_templates(resource: dict) -> list[dict]:
    spec = resource["spec"]
    if resource["kind"] == "RayCluster":
        return [spec["headGroupSpec"]["template"], *(group["template"] for group in spec["workerGroupSpecs"])]
    return [spec["submitterPodTemplate"]]


def test_every_yaml_file_of_infra_parses():
    files = sorted(INFRA.rglob("*.yaml"))
    assert {f.name for f in files} >= {"spark-submit-job.yaml", "ray-cluster.yaml", "ray-job.yaml",
                                       "docker-compose.yaml", "helm-values.yaml"}
    for path in files:
        assert list(yaml.safe_load_all(path.read_text())), path


@pytest.mark.parametrize("manifest", ["spark-submit-job.yaml", "ray-cluster.yaml", "ray-job.yaml"])
def test_kubernetes_manifests_match_the_kubernetes_api_schemas(manifest):
    for resource in rendered(INFRA / "k8s" / manifest):
        if resource["apiVersion"] == "ray.io/v1":
            for template in pod_templates(resource):
                kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                                              "template": template}, KUBERNETES_VERSION, strict=True)
        else:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validation_catches_a_misspelt_field():
    (job,) = [r for r in rendered(INFRA / "k8s" / "spark-submit-job.yaml") if r["kind"] == "Job"]
    job["spec"]["backofLimit"] = job["spec"].pop("backoffLimit")
    with pytest.raises(kubernetes_validate.ValidationError, match="'backofLimit' was unexpected"):
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_the_ray_job_runs_the_step_as_the_dags_operator_does():
    from dags.nightly import ray_job_runtime_env

    (job,) = rendered(INFRA / "k8s" / "ray-job.yaml")
    (cluster,) = [r for r in rendered(INFRA / "k8s" / "ray-cluster.yaml") if r["kind"] == "RayCluster"]
    settings = load_settings(env="cluster")
    assert job["spec"]["entrypoint"] == "python -m jobs.cli score --date 2026-11-04 --json"
    assert yaml.safe_load(job["spec"]["runtimeEnvYAML"]) == ray_job_runtime_env("cluster", settings.night.ray_spark_master, None)
    # The job API the DAG submits to is this cluster's head service (KubeRay names it <cluster>-head-svc).
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster["metadata"]["name"]
    host = f"{cluster['metadata']['name']}-head-svc.{cluster['metadata']['namespace']}.svc.cluster.local"
    assert settings.night.ray_jobs_address == f"http://{host}:8265"


def test_the_spark_job_pod_runs_an_installed_job_module_with_the_kubernetes_properties():
    (job,) = [r for r in rendered(INFRA / "k8s" / "spark-submit-job.yaml") if r["kind"] == "Job"]
    (driver,) = job["spec"]["template"]["spec"]["containers"]
    application = next(a for a in driver["args"] if a.endswith(".py"))
    assert application == "/usr/local/lib/python3.11/site-packages/jobs/clean_events.py"
    assert (REPO / "jobs" / Path(application).name).is_file()
    assert "--properties-file=/etc/seqlake/spark/kubernetes.conf" in driver["args"]


@pytest.mark.parametrize("environment", ["local", "standalone", "kubernetes", "yarn"])
def test_spark_properties_files_hold_spark_keys_once_each(environment):
    keys = [line.split(None, 1)[0] for line in (INFRA / "spark" / f"{environment}.conf").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert keys and all(k.startswith("spark.") for k in keys)
    assert len(keys) == len(set(keys))


def test_the_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    done = subprocess.run([str(hadolint), "--no-color", "--failure-threshold", "info", str(INFRA / "docker" / "Dockerfile")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_compose_file_matches_the_compose_specification():
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    compose = yaml.safe_load((INFRA / "airflow" / "docker-compose.yaml").read_text())
    validator = jsonschema.Draft201909Validator(schema)
    assert [e.message for e in validator.iter_errors(compose)] == []
    compose["services"]["scheduler"]["enviroment"] = {}
    assert [e.message for e in validator.iter_errors(compose)] == ["'enviroment' does not match any of the regexes: '^x-'"]


def _settings_from(environment: dict[str, str], monkeypatch) -> Settings:
    for key, value in environment.items():
        if key.startswith("SEQLAKE_"):
            monkeypatch.setenv(key, value)
    return load_settings()


def test_compose_gives_seqlake_valid_cluster_settings_and_the_connection_the_dag_submits_through(monkeypatch):
    compose = yaml.safe_load((INFRA / "airflow" / "docker-compose.yaml").read_text())
    example = dict(line.split("=", 1) for line in (INFRA / "airflow" / "compose.env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    environment = {key: re.sub(r"\$\{(\w+)(:[?-][^}]*)?\}", lambda m: example[m.group(1)], value)
                   for key, value in compose["x-airflow"]["environment"].items()}
    settings = _settings_from(environment, monkeypatch)
    assert (settings.env, settings.night.profile) == ("cluster", "cluster")
    assert settings.night.ray_jobs_address == example["SEQLAKE_NIGHT__RAY_JOBS_ADDRESS"]
    assert f"AIRFLOW_CONN_{settings.night.spark_conn_id.upper()}" in environment


def test_helm_values_give_seqlake_valid_cluster_settings(monkeypatch):
    values = yaml.safe_load((INFRA / "airflow" / "helm-values.yaml").read_text())
    settings = _settings_from({e["name"]: e["value"] for e in values["env"]}, monkeypatch)
    assert (settings.env, settings.night.profile) == ("cluster", "cluster")
    assert settings.night.ray_jobs_address == "http://seqlake-ray-head-svc.seqlake.svc.cluster.local:8265"
    assert "seqlake-airflow-connections" in values["extraEnvFrom"]
