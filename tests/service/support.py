"""Constants and helpers of the API tests (fixtures are in conftest.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from store.db import Database

# db_backend is SQLite only in tests/service; a test that should also run on PostgreSQL says so.
BOTH_BACKENDS = pytest.mark.parametrize(
    "db_backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
    indirect=True,
)
SPIRAL: dict[str, Any] = {"name": "tiny", "data": {"dataset": "spiral"},
                          "model": {"hidden": [16]}, "training": {"steps": 20}}
PROBLEM_JSON = "application/problem+json"
JsonDict = dict[str, Any]


def published_ids(broker_dir: Path) -> list[str]:
    """The job ids in the broker's queue folder, oldest first, read as a worker would."""
    ids = []
    messages = (broker_dir / "queue").glob("*.msg")
    for path in sorted(messages, key=lambda path: int(path.name.split("_")[0])):
        ids.extend(message_job_ids(json.loads(path.read_text())))
    return ids


def message_job_ids(message: dict[str, Any]) -> list[str]:
    """The job ids a kombu message of gradlab.run_job carries, decoded as a worker would."""
    body = message["body"]
    if message["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body).decode()
    args, _kwargs, _embed = json.loads(body)
    assert message["headers"]["task"] == "gradlab.run_job"
    return list(args)


def count_rows(database: Database, table: str) -> int:
    with database.read() as session:
        return int(session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
