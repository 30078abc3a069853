"""The dependency rule of docs/architecture.md, held two ways.

- By reading the code: every import in a package (at module level or inside a function) names
  only the project packages that package may use, and, for the pure packages (the contract, the
  training core, the diagnosis), only the libraries they may use.
- By importing it: each package's entry modules are imported in a fresh interpreter, which must
  not load what that package must not know about, however indirectly (torch in the API,
  sqlalchemy in the training core, httpx or rich behind `import gradlab_client`...).

A change of the rule changes docs/architecture.md and this file together.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Where each package's source lives.
SOURCES = {
    "gradlab_contract": ROOT / "client" / "gradlab_contract",
    "gradlab_client": ROOT / "client" / "gradlab_client",
    "training": ROOT / "training",
    "diagnosis": ROOT / "diagnosis",
    "store": ROOT / "store",
    "taskqueue": ROOT / "taskqueue",
    "service": ROOT / "service",
    "worker": ROOT / "worker",
    "migrations": ROOT / "migrations",
    "gradlab_server": ROOT / "gradlab_server",
    "deploy": ROOT / "deploy",
    "bench": ROOT / "bench",
}
PROJECT = {*SOURCES, "tests"}

# The project packages each package may import (the arrows of docs/architecture.md).
MAY_IMPORT: dict[str, set[str]] = {
    "gradlab_contract": set(),
    "gradlab_client": {"gradlab_contract"},
    "training": {"gradlab_contract"},
    "diagnosis": {"gradlab_contract"},
    "store": {"gradlab_contract"},
    "taskqueue": set(),
    "service": {"gradlab_contract", "store", "diagnosis", "taskqueue"},
    "worker": {"gradlab_contract", "store", "training", "diagnosis", "taskqueue"},
    "migrations": {"store"},
    "gradlab_server": {"gradlab_contract", "store", "taskqueue", "service", "worker", "training"},
    "deploy": {"store", "taskqueue"},
    # Benchmarks measure the server side, with the tests' scenarios; the SDK is not measured.
    "bench": {"gradlab_contract", "store", "taskqueue", "service", "worker", "training",
              "diagnosis", "tests"},
}

# The libraries the pure packages may import: (anywhere, only inside a function). Packages not
# listed here may use any library their distribution declares; the import check below keeps the
# heavy ones out of them.
LIBRARIES: dict[str, tuple[set[str], set[str]]] = {
    "gradlab_contract": ({"pydantic", "pydantic_core", "tenacity"}, set()),
    # pydantic is the contract's own library (its validation errors); the data-set generators
    # and YAML specs are loaded only by the data set or the CLI that needs them.
    "training": ({"torch", "numpy", "pydantic"}, {"mnist1d", "sklearn", "yaml"}),
    "diagnosis": ({"numpy"}, set()),
}

SERVER_SIDE = ["store", "service", "worker", "training", "diagnosis", "taskqueue", "gradlab_server"]
WEB_AND_DB = ["sqlalchemy", "fastapi", "starlette", "celery", "httpx", "pydantic_settings"]
LOADED: dict[str, tuple[list[str], list[str]]] = {
    # package: (modules imported, top-level modules that must not be loaded)
    "gradlab_contract": (
        ["gradlab_contract.spec", "gradlab_contract.shapes", "gradlab_contract.models",
         "gradlab_contract.catalog"],
        ["torch", "numpy", "gradlab_client", *WEB_AND_DB, *SERVER_SIDE],
    ),
    "gradlab_client (SDK)": (
        ["gradlab_client", "gradlab_client.client"],
        ["torch", "numpy", "sqlalchemy", "fastapi", "celery", *SERVER_SIDE],
    ),
    "gradlab_client (CLI)": (
        ["gradlab_client.cli"],
        ["torch", "numpy", "sqlalchemy", "fastapi", "celery", *SERVER_SIDE],
    ),
    "training": (
        ["training", "training.loop", "training.data", "training.probes", "training.cli"],
        ["gradlab_client", *WEB_AND_DB, "store", "service", "worker", "taskqueue", "diagnosis"],
    ),
    "diagnosis": (
        ["diagnosis"],
        ["torch", "gradlab_client", *WEB_AND_DB, "store", "service", "worker", "training"],
    ),
    "store": (
        ["store.jobs", "store.leases", "store.series", "store.snapshots", "store.migrate"],
        ["torch", "fastapi", "celery", "httpx", "gradlab_client", "training", "service", "worker",
         "taskqueue", "diagnosis"],
    ),
    "taskqueue": (
        ["taskqueue"],
        ["torch", "fastapi", "sqlalchemy", "gradlab_client", "training", "service", "worker"],
    ),
    "service": (["service.app"], ["torch", "gradlab_client", "training", "worker"]),
    "worker": (["worker.main"], ["fastapi", "gradlab_client", "service"]),
    # The API image runs the health check and has no torch.
    "deploy": (
        ["deploy.healthcheck", "deploy.requirements", "deploy.config_docs"],
        ["torch", "fastapi", "gradlab_client", "training", "service", "worker"],
    ),
}


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """The top-level names `path` imports, each with whether the import is inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name.split(".")[0], in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.split(".")[0], in_function))
            nested = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            visit(child, in_function or nested)

    visit(tree, False)
    return found


def wrong_imports(package: str) -> list[str]:
    allowed = MAY_IMPORT[package] | {package}
    anywhere, lazily = LIBRARIES.get(package, (None, set()))
    wrong = []
    for path in sorted(SOURCES[package].rglob("*.py")):
        where = path.relative_to(SOURCES[package].parent)
        for name, in_function in imports_of(path):
            if name in sys.stdlib_module_names or name == "__future__":
                continue
            if name in PROJECT:
                if name not in allowed:
                    wrong.append(f"{where} imports {name}")
            elif anywhere is not None and name not in anywhere and not (
                in_function and name in lazily
            ):
                wrong.append(f"{where} imports {name}"
                             + (" at module level" if name in lazily else ""))
    return wrong


def test_only_the_cli_imports_rich() -> None:
    """rich draws the CLI's tables and progress; the SDK does not import it. (httpx itself loads
    rich when its optional command line is installed, so this is read, not imported.)"""
    importers = sorted(
        path.name for path in SOURCES["gradlab_client"].glob("*.py")
        if any(name == "rich" for name, _ in imports_of(path))
    )
    assert all(name == "cli.py" or name.startswith("_cli") for name in importers), importers


def modules_loaded_by(modules: list[str]) -> set[str]:
    code = (
        "import sys, json, importlib\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    return {name.split(".")[0] for name in json.loads(out)}


def test_every_package_of_the_project_has_a_rule() -> None:
    top_level = {path.name for path in ROOT.iterdir()
                 if path.is_dir() and (path / "__init__.py").exists()}
    top_level |= {path.name for path in (ROOT / "client").iterdir()
                  if (path / "__init__.py").exists()}
    assert top_level - {"tests"} <= set(MAY_IMPORT), "a package with no rule in MAY_IMPORT"
    assert set(MAY_IMPORT) == set(SOURCES)


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_package_imports_only_the_packages_and_libraries_it_may(package: str) -> None:
    assert not wrong_imports(package)


def test_the_reader_finds_what_the_rule_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lazy imports are read too; a lazily allowed library is refused at module level."""
    (tmp_path / "bad.py").write_text(
        "import yaml\nfrom store import jobs\n"
        "def f():\n    import sklearn\n    from worker import runner\n"
    )
    monkeypatch.setitem(SOURCES, "training", tmp_path)
    bad = f"{tmp_path.name}/bad.py"
    assert wrong_imports("training") == [
        f"{bad} imports yaml at module level", f"{bad} imports store", f"{bad} imports worker",
    ]


@pytest.mark.parametrize("package", sorted(LOADED))
def test_importing_a_package_loads_nothing_it_must_not(package: str) -> None:
    modules, forbidden = LOADED[package]
    pulled_in = modules_loaded_by(modules) & set(forbidden)
    assert not pulled_in, f"{package} pulled in {sorted(pulled_in)}"
