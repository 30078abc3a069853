"""Print the third-party requirements of gradlab-server (and of the client it installs from
./client), one per line, read from the pyproject files: `python deploy/requirements.py [EXTRA...]`.

The Dockerfile installs these before it copies the source, so the dependency layer is rebuilt only
when a pyproject file changes; then it installs the two packages themselves with --no-deps. The
API image asks for no extra and so gets no torch; the worker image asks for `worker`.
Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Installed from the checkout, not from an index.
LOCAL = {"gradlab-client", "gradlab-server"}


def project(path: Path) -> dict[str, Any]:
    with path.open("rb") as file:
        table: dict[str, Any] = tomllib.load(file)["project"]
    return table


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    return match.group(0).lower().replace("_", "-") if match else ""


def requirements(extras: list[str], root: Path = ROOT) -> list[str]:
    server, client = project(root / "pyproject.toml"), project(root / "client" / "pyproject.toml")
    optional: dict[str, list[str]] = server.get("optional-dependencies", {})
    unknown = sorted(set(extras) - set(optional))
    if unknown:
        raise SystemExit(f"no such extra in pyproject.toml: {', '.join(unknown)}")
    found: list[str] = [*client["dependencies"], *server["dependencies"]]
    for extra in extras:
        found += optional[extra]
    unique = dict.fromkeys(line for line in found if _name(line) not in LOCAL)
    return list(unique)


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
