"""`pip install ./client` into a fresh virtual environment (no system site-packages): the SDK
and the `gradlab` command work there with httpx and pydantic alone, and importing them loads
nothing of the server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT_DIR = Path(__file__).resolve().parents[2] / "client"
SERVER_SIDE = ["store", "service", "worker", "training", "diagnosis", "gradlab_server", "taskqueue",
               "migrations"]
FORBIDDEN = {"torch", "numpy", "sqlalchemy", "fastapi", "starlette", "celery", "alembic",
             "pandas", "yaml", *SERVER_SIDE}
MODULES = ["gradlab_client", "gradlab_client.cli", "gradlab_contract.shapes",
           "gradlab_contract.catalog"]

pytestmark = pytest.mark.slow


def run(*command: str | Path, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    # A clean environment: nothing of this checkout or its venv may leak in through variables.
    env = {key: value for key, value in os.environ.items()
           if key not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    result = subprocess.run([str(part) for part in command], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        pytest.fail(f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("client-install")
    # A copy, so that pip's in-tree build leaves no build/ folder in the checkout.
    source = root / "client"
    shutil.copytree(CLIENT_DIR, source,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    run(sys.executable, "-m", "venv", root / "venv", cwd=root)
    python = root / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", source, cwd=root)
    return root / "venv"


def test_importing_the_sdk_loads_nothing_of_the_server(venv: Path, tmp_path: Path) -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "import gradlab_client\n"
        "print(json.dumps({'file': gradlab_client.__file__, 'version': gradlab_client.__version__,"
        " 'modules': sorted({m.split('.')[0] for m in sys.modules})}))"
    )
    report = json.loads(run(venv / "bin" / "python", "-c", code, cwd=tmp_path).stdout)
    assert report["file"].startswith(str(venv)), "imported the checkout, not the installed copy"
    assert report["version"] == "0.1.0"
    assert not FORBIDDEN & set(report["modules"]), sorted(FORBIDDEN & set(report["modules"]))


def test_the_installed_distribution_is_typed_and_has_only_its_dependencies(venv: Path) -> None:
    installed = run(venv / "bin" / "python", "-m", "pip", "list", "--format", "json", cwd=venv)
    names = {package["name"].lower() for package in json.loads(installed.stdout)}
    assert {"gradlab-client", "httpx", "pydantic"} <= names
    assert not names & {"torch", "numpy", "sqlalchemy", "fastapi", "celery", "pandas", "pyyaml"}
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert (site / "gradlab_client" / "py.typed").is_file()


def test_the_gradlab_command_runs_without_optional_extras(venv: Path, tmp_path: Path) -> None:
    gradlab = venv / "bin" / "gradlab"
    help_text = run(gradlab, "--help", cwd=tmp_path).stdout
    assert "submit" in help_text and "Exit codes" in help_text
    spec = tmp_path / "spec.yaml"
    spec.write_text("data: {dataset: spiral}\n")
    result = run(gradlab, "submit", spec, cwd=tmp_path, check=False)
    assert result.returncode == 2
    assert "pip install 'gradlab-client[yaml]'" in result.stderr
