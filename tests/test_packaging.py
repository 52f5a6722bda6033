"""What a cluster installs: the wheel that `make dist` builds carries the code,
every environment's configuration and the entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "infra" / "dist"))
from package import build_wheel  # noqa: E402


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return build_wheel(tmp_path_factory.mktemp("dist"))


def test_the_wheel_carries_the_configuration_and_the_entry_point(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {"pipelines/conf/local.toml", "pipelines/conf/cluster.toml"} <= set(names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "seqlake = jobs.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_wheel_loads_the_cluster_settings_away_from_the_repository(wheel, tmp_path):
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)], check=True)
    probe = ("import json, pipelines; from pipelines.config import load_settings; s = load_settings(env='cluster'); "
             "print(json.dumps({'code': pipelines.__file__, 'lakehouse': s.lakehouse, 'master': s.spark.master}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {"code": str(site / "pipelines" / "__init__.py"), "lakehouse": "s3a://seqlake-prod/lakehouse", "master": "yarn"}


EXECUTOR_IMPORTS = """
import importlib.abc, importlib.metadata, json, re, sys

def closure(names):
    seen, todo = set(), list(names)
    while todo:
        name = re.split(r"[<>=!~;\\[ ]", todo.pop())[0].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        todo += [r for r in importlib.metadata.requires(name) or [] if "extra ==" not in r]
    return seen

shipped = closure(json.loads(sys.argv[1])) | {"pyspark", "py4j"}  # pyspark: each worker's Spark
owners = importlib.metadata.packages_distributions()

class NotOnExecutors(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.partition(".")[0]
        dists = {d.lower().replace("_", "-") for d in owners.get(top, [])}
        if dists and top != "pipelines" and not dists & shipped:
            raise ImportError(f"{name} is not in the executors' environment")

sys.meta_path.insert(0, NotOnExecutors())
import pipelines.bse.embeddings, pipelines.bse.signatures
"""


def test_the_modules_executors_run_import_with_the_executor_requirements_alone():
    """The Arrow UDFs of clean and signatures run on executors, whose packed
    environment holds executor-requirements.txt and their dependencies only."""
    from package import pinned_requirements

    done = subprocess.run([sys.executable, "-c", EXECUTOR_IMPORTS, json.dumps(pinned_requirements())],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
