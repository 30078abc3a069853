"""The dependency rule (architecture.md): each package's modules are imported in a fresh
interpreter and must not pull in what that package must not know about."""

import json
import subprocess
import sys

import pytest

SERVER_SIDE = ["store", "service", "worker", "training", "diagnosis", "taskqueue", "gradlab_server"]
RULES: dict[str, tuple[list[str], list[str]]] = {
    # package: (modules imported, top-level modules that must not be loaded)
    "gradlab_contract": (
        ["gradlab_contract.spec", "gradlab_contract.shapes", "gradlab_contract.models",
         "gradlab_contract.catalog"],
        ["httpx", "torch", "numpy", "sqlalchemy", "fastapi", "celery", "gradlab_client",
         *SERVER_SIDE],
    ),
    "gradlab_client (SDK)": (
        ["gradlab_client", "gradlab_client.client", "gradlab_client.cli"],
        ["torch", "numpy", "sqlalchemy", "fastapi", "celery", *SERVER_SIDE],
    ),
    "training": (
        ["training.loop", "training.data", "training.probes", "training.cli"],
        [
            "sqlalchemy",
            "fastapi",
            "celery",
            "httpx",
            "gradlab_client",
            "pydantic_settings",
            "store",
            "service",
            "worker",
            "taskqueue",
        ],
    ),
    "store": (
        ["store.jobs", "store.leases", "store.metrics", "store.snapshots", "store.migrate"],
        ["torch", "fastapi", "celery", "training", "service", "worker", "taskqueue"],
    ),
    "taskqueue": (
        ["taskqueue"],
        ["torch", "fastapi", "sqlalchemy", "training", "service", "worker"],
    ),
    "service": (["service.app"], ["torch", "training", "worker"]),
    "worker": (["worker.main"], ["fastapi", "service"]),
    "diagnosis": (
        ["diagnosis"],
        ["torch", "sqlalchemy", "fastapi", "celery", "httpx", "gradlab_client", "store", "service",
         "worker", "training"],
    ),
}


def modules_loaded_by(modules: list[str]) -> set[str]:
    code = (
        "import sys, json, importlib\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_only_what_it_may(package: str) -> None:
    modules, forbidden = RULES[package]
    pulled_in = modules_loaded_by(modules) & set(forbidden)
    assert not pulled_in, f"{package} pulled in {sorted(pulled_in)}"
