"""The dependency rule (architecture.md): each package is imported in a fresh interpreter and
must not pull in what it must not know about."""

import json
import subprocess
import sys

import pytest

SERVER_SIDE = ["store", "service", "worker", "training", "diagnosis", "gradlab_server"]
FORBIDDEN = {
    "gradlab_client": ["torch", "numpy", "sqlalchemy", "fastapi", "celery", *SERVER_SIDE],
    "training": [
        "sqlalchemy",
        "fastapi",
        "celery",
        "httpx",
        "pydantic_settings",
        "store",
        "service",
        "worker",
    ],
    "store": ["torch", "fastapi", "celery", "training", "service", "worker"],
    "service": ["torch", "training", "worker"],
    "worker": ["fastapi", "service"],
    "diagnosis": [
        "torch",
        "sqlalchemy",
        "fastapi",
        "celery",
        "store",
        "service",
        "worker",
        "training",
    ],
}


def modules_loaded_by(module: str) -> set[str]:
    code = (
        "import sys, json, importlib; "
        f"importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


def importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_it_may(package: str) -> None:
    if not importable(package):
        pytest.skip(f"{package} is not written yet")
    loaded = modules_loaded_by(package)
    assert not loaded & set(FORBIDDEN[package]), (
        f"{package} pulled in {sorted(loaded & set(FORBIDDEN[package]))}"
    )
