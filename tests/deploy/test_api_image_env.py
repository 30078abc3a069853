"""The API image's Python environment, made here as its Dockerfile stage makes it (the
requirements of deploy/requirements.py with no extra, then the two packages with --no-deps) in
a fresh virtual environment: torch is not in it, and `gradlab-server migrate` and
`gradlab-server api` run from it, on the installed (not the checked-out) code."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.deploy.compose_support import ROOT, free_port

pytestmark = pytest.mark.slow


def run(args: list[str], env: dict[str, str] | None = None,
        cwd: str | Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)
    assert result.returncode == 0, f"{args}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def api_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("api-image") / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    listed = run([str(python), str(ROOT / "deploy" / "requirements.py")]).stdout
    requirements = venv.parent / "requirements.txt"
    requirements.write_text(listed)
    run([str(python), "-m", "pip", "install", "-q", "--requirement", str(requirements)])
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(ROOT / "client"), str(ROOT)])
    return venv


def test_the_api_environment_has_no_torch(api_env: Path) -> None:
    python = str(api_env / "bin" / "python")
    probe = ("import importlib.util, service.app, gradlab_server.cli, store.migrate; "
             "print(importlib.util.find_spec('torch') is None, service.app.__file__)")
    found, location = run([python, "-c", probe], cwd="/").stdout.split()
    assert found == "True"
    assert location.startswith(str(api_env)), location  # the installed code, not the checkout
    packages = run([python, "-m", "pip", "list", "--format=freeze"]).stdout.lower()
    for heavy in ("torch==", "mnist1d==", "scikit-learn==", "nvidia-"):
        assert heavy not in packages, heavy


def test_migrate_and_the_api_run_from_it(api_env: Path, tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRADLAB_")}
    env |= {"GRADLAB_HOME": str(tmp_path / "home"), "GRADLAB_PORT": str(port),
            "GRADLAB_LOG_FORMAT": "json"}
    server = str(api_env / "bin" / "gradlab-server")
    run([server, "migrate"], env=env, cwd=tmp_path)
    log = (tmp_path / "api.log").open("wb")
    api = subprocess.Popen([server, "api"], env=env, cwd=tmp_path, stdout=log,
                           stderr=subprocess.STDOUT)
    try:
        deadline, ready = time.monotonic() + 60, None
        while time.monotonic() < deadline and api.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 200, (tmp_path / "api.log").read_text()
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert 'gradlab_jobs{status="queued"} 0.0' in metrics.text
    finally:
        api.terminate()
        api.wait(30)
