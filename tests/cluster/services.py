"""The loopback cluster of `make test-cluster`: an S3-compatible object store
(moto's server), a Spark standalone master with two workers, all on 127.0.0.1,
each its own process group, stopped by process id."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pyspark

BIN = Path(sys.executable).parent
SPARK_HOME = Path(pyspark.__file__).parent
# moto accepts any key pair; delta-rs, pyarrow and boto3 read these, Spark gets them as s3a conf.
OBJECT_STORE_ENV = {"AWS_ACCESS_KEY_ID": "loopback", "AWS_SECRET_ACCESS_KEY": "loopback", "AWS_REGION": "us-east-1",
                    "AWS_ALLOW_HTTP": "true"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclasses.dataclass
class Started:
    """Processes started here, with their logs; stop() ends every one of them."""

    folder: Path
    processes: dict[str, subprocess.Popen] = dataclasses.field(default_factory=dict)
    # Folders of theirs outside `folder`, removed once they are stopped.
    scratch: list[Path] = dataclasses.field(default_factory=list)

    def scratch_folder(self, prefix: str) -> Path:
        """A folder with a short path (Ray's Unix sockets live in its temp dir: 107 bytes at most)."""
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        self.scratch.append(folder)
        return folder

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("wb")
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.folder,
                                   start_new_session=True)
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")

    def wait_for(self, name: str, ready: callable, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            process = self.processes[name]
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not {what} (exit {process.poll()}):\n{self.log(name)[-3000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM to each process group, then SIGKILL to what is left after 30 s,
        descendants that left the group included (Ray starts its daemons in sessions of their own)."""
        import psutil

        descendants = []
        for process in self.processes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                descendants += psutil.Process(process.pid).children(recursive=True)
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _, alive = psutil.wait_procs(descendants, timeout=10)
        for straggler in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                straggler.kill()
        for folder in self.scratch:
            shutil.rmtree(folder, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class Loopback:
    """The running services' addresses."""

    endpoint: str  # the object store's http://127.0.0.1:PORT
    master: str  # spark://127.0.0.1:PORT
    master_ui: str  # the master's JSON status page
    bucket: str

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs to reach the object store."""
        return {**OBJECT_STORE_ENV, "AWS_ENDPOINT_URL": self.endpoint}

    def s3a_conf(self) -> dict[str, str]:
        """Spark's s3a settings for the object store (hadoop-aws, SDK v2)."""
        prefix = "spark.hadoop.fs.s3a."
        return {
            f"{prefix}endpoint": self.endpoint, f"{prefix}endpoint.region": OBJECT_STORE_ENV["AWS_REGION"],
            f"{prefix}path.style.access": "true", f"{prefix}connection.ssl.enabled": "false",
            f"{prefix}access.key": OBJECT_STORE_ENV["AWS_ACCESS_KEY_ID"],
            f"{prefix}secret.key": OBJECT_STORE_ENV["AWS_SECRET_ACCESS_KEY"],
            f"{prefix}aws.credentials.provider": "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",
        }


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def workers_alive(master_ui: str) -> int:
    import json

    with urllib.request.urlopen(f"{master_ui}/json/", timeout=5) as page:
        return sum(w["state"] == "ALIVE" for w in json.load(page)["workers"])


@dataclasses.dataclass(frozen=True)
class RayCluster:
    """A Ray head and one more node, each with a resource naming it."""

    address: str  # 127.0.0.1:GCS_PORT, what `ray start --address` and ray.init take
    dashboard: str  # http://127.0.0.1:PORT, the job-submission API
    nodes: tuple[str, ...]  # the resource that names each node


def _ray_node(name: str, ports: range, cpus: int, extra: list[str]) -> list[str]:
    """`ray start` of one node in the foreground (--block: its process group is the node)."""
    first = ports.start
    return [str(BIN / "ray"), "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", str(cpus),
            "--resources", f'{{"{name}": 1}}', "--node-manager-port", str(first), "--object-manager-port", str(first + 1),
            "--dashboard-agent-listen-port", str(first + 2), "--dashboard-agent-grpc-port", str(first + 3),
            "--metrics-export-port", str(first + 4), "--runtime-env-agent-port", str(first + 5),
            "--min-worker-port", str(first + 100), "--max-worker-port", str(ports.stop - 1), *extra]


def start_ray(started: Started, env: dict[str, str], cpus_per_node: int = 2) -> RayCluster:
    gcs, dashboard = free_port(), free_port()
    # Each node gets a port block of its own, clear of the ephemeral range that free_port draws from.
    head = _ray_node("node_head", range(21000, 21400), cpus_per_node,
                     ["--head", "--port", str(gcs), "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                      "--dashboard-port", str(dashboard), "--ray-client-server-port", str(free_port()),
                      "--temp-dir", str(started.scratch_folder("seqlake-ray-head-"))])
    started.start("ray-head", head, env)
    cluster = RayCluster(address=f"127.0.0.1:{gcs}", dashboard=f"http://127.0.0.1:{dashboard}", nodes=("node_head", "node_second"))
    started.wait_for("ray-head", lambda: _answers(f"{cluster.dashboard}/api/version"), "serve its dashboard")
    # A temp folder of its own, as a second machine has: runtime environments unpack there.
    second = _ray_node("node_second", range(21400, 21800), cpus_per_node,
                       ["--address", cluster.address, "--temp-dir", str(started.scratch_folder("seqlake-ray-second-"))])
    started.start("ray-second", second, env)
    started.wait_for("ray-second", lambda: _alive_ray_nodes(cluster) == 2, "join the head")
    return cluster


def _alive_ray_nodes(cluster: RayCluster) -> int:
    import json

    try:
        with urllib.request.urlopen(f"{cluster.dashboard}/nodes?view=summary", timeout=5) as page:
            summary = json.load(page)["data"]["summary"]
    except (OSError, KeyError, ValueError):
        return 0
    return sum(node["raylet"]["state"] == "ALIVE" for node in summary)


@contextlib.contextmanager
def loopback_cluster(folder: Path, workers: int = 2, worker_memory: str = "2g") -> Iterator[Loopback]:
    """Start the object store, the master and `workers` workers (1 core each);
    stop all of them when the block ends, however it ends."""
    started = Started(folder)
    # Workers start executors from a clean environment: nothing of this venv on
    # PATH and no PYSPARK_PYTHON, so executors run only what the job ships.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_", "SPARK_", "VIRTUAL_ENV"))}
    base["PATH"] = os.pathsep.join(p for p in base.get("PATH", "").split(os.pathsep) if Path(p) != BIN)
    base["SPARK_HOME"] = str(SPARK_HOME)
    try:
        store_port, master_port, ui_port = free_port(), free_port(), free_port()
        endpoint = f"http://127.0.0.1:{store_port}"
        started.start("object-store", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(store_port)], base)
        started.wait_for("object-store", lambda: _answers(f"{endpoint}/moto-api/"), "answer")
        spark_class = str(SPARK_HOME / "bin" / "spark-class")
        started.start("spark-master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                       "--port", str(master_port), "--webui-port", str(ui_port)], base)
        master, master_ui = f"spark://127.0.0.1:{master_port}", f"http://127.0.0.1:{ui_port}"
        started.wait_for("spark-master", lambda: _answers(f"{master_ui}/json/"), "serve its status page")
        # Each executor unpacks the job's environment (about 0.5 GB) into its application's
        # folder: a worker removes the folders of finished applications, as a long-lived one must.
        cleanup = {"SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.interval=30 "
                                        "-Dspark.worker.cleanup.appDataTtl=30"}
        for n in range(workers):
            work = folder / f"worker-{n}"
            work.mkdir()
            started.start(f"spark-worker-{n}", [spark_class, "org.apache.spark.deploy.worker.Worker", master,
                                                "--host", "127.0.0.1", "--cores", "1", "--memory", worker_memory,
                                                "--webui-port", str(free_port()), "--work-dir", str(work)],
                          {**base, **cleanup})
        started.wait_for("spark-master", lambda: workers_alive(master_ui) == workers, f"register {workers} workers")
        loopback = Loopback(endpoint=endpoint, master=master, master_ui=master_ui, bucket="seqlake")
        import boto3

        boto3.client("s3", endpoint_url=endpoint, **_boto_keys()).create_bucket(Bucket=loopback.bucket)
        yield loopback
    finally:
        started.stop()


def _boto_keys() -> dict[str, str]:
    return {"aws_access_key_id": OBJECT_STORE_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": OBJECT_STORE_ENV["AWS_SECRET_ACCESS_KEY"],
            "region_name": OBJECT_STORE_ENV["AWS_REGION"]}


def upload_folder(loopback: Loopback, local: Path, prefix: str) -> str:
    """Copy a local folder to s3a://BUCKET/PREFIX; returns that URI."""
    import boto3

    client = boto3.client("s3", endpoint_url=loopback.endpoint, **_boto_keys())
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        client.upload_file(str(path), loopback.bucket, f"{prefix}/{path.relative_to(local).as_posix()}")
    return f"s3a://{loopback.bucket}/{prefix}"
