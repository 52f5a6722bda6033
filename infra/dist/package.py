"""`make dist`: what a cluster needs, under dist/.

- seqlake-<version>-<build>-py3-none-any.whl: the code, its configuration
  files (pipelines/conf/*.toml) and the `seqlake` entry point. Ray jobs take
  it as their runtime environment (py_modules); images install it. The build
  tag is a hash of its content: Ray caches a wheel by its file name, so a
  rebuilt wheel under the same name would leave a cluster on the old code.
- seqlake-executor-env.tar.gz: a packed virtual environment (venv-pack) with
  the wheel and what Spark executors import (executor-requirements.txt), at
  this environment's versions, without pip and the libraries' test suites.
  spark-submit ships it (spark.archives) and executors run its interpreter.

venv-pack, not conda-pack or pex: the project installs from PyPI into plain
virtual environments (no conda here or on the images), and Spark documents
venv-pack archives for spark.archives. Like pex, the archive does not carry
the interpreter: its bin/python links to the nodes' Python 3.11, which the
image (infra/docker/Dockerfile) installs at the same path as here.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def build_wheel(out: Path) -> Path:
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", folder, str(REPO)],
                       check=True)
        (built,) = Path(folder).glob("seqlake-*-py3-none-any.whl")
        name, version, tags = built.name.removesuffix(".whl").split("-", 2)
        build = "0" + hashlib.sha256(_content(built)).hexdigest()[:12]  # a build tag starts with a digit
        wheel = out / f"{name}-{version}-{build}-{tags}.whl"
        shutil.move(built, wheel)
    return wheel


def _content(wheel: Path) -> bytes:
    """The wheel's files, not its zip's timestamps: the same code gives the same tag."""
    with zipfile.ZipFile(wheel) as archive:
        return b"".join(name.encode() + archive.read(name) for name in sorted(archive.namelist()) if not name.endswith("RECORD"))


def pinned_requirements() -> list[str]:
    """executor-requirements.txt at the versions this environment runs."""
    names = [line.strip() for line in (HERE / "executor-requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def build_executor_env(wheel: Path, out: Path) -> Path:
    archive = out / "seqlake-executor-env.tar.gz"
    with tempfile.TemporaryDirectory(dir=out) as folder:
        venv = Path(folder) / "env"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, *pinned_requirements()], check=True)
        subprocess.run([*pip, "--no-deps", str(wheel)], check=True)
        _strip(venv)
        subprocess.run([str(Path(sys.executable).parent / "venv-pack"), "--quiet", "--force", "-p", str(venv), "-o", str(archive)],
                       check=True)
    return archive


def _strip(venv: Path) -> None:
    """Leave out what executors never run: the installer and the libraries' own
    test suites and C headers. Each executor of each job fetches and unpacks the
    archive, so its size is paid on every job (about a third of it was these)."""
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "--quiet", "--yes", "pip", "setuptools"], check=True)
    (site,) = (venv / "lib").glob("python3.*/site-packages")
    for folder in [*site.glob("*/tests"), *site.glob("*/*/tests"), *site.glob("pyarrow/include")]:
        shutil.rmtree(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("seqlake-*.whl"):
        old.unlink()
    wheel = build_wheel(out)
    archive = build_executor_env(wheel, out)
    shutil.rmtree(REPO / "build", ignore_errors=True)
    for path in (wheel, archive):
        print(f"{path}  {path.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
