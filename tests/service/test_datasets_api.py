"""POST/GET /v1/datasets: uploads are checked without unpickling, size-limited, all-or-nothing,
per team, and usable as data.dataset in a job spec."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from gradlab_contract.models import DatasetInfo
from gradlab_contract.spec import BUILTIN_DATASETS

from store.db import Database
from store.settings import Settings
from tests.service.support import BOTH_BACKENDS, PROBLEM_JSON, JsonDict, count_rows


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def good_arrays(rows: int = 40) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(rows, 6)).astype(np.float32),
            "y": rng.integers(0, 4, size=rows)}


def upload(client: TestClient, auth: dict[str, str], content: bytes, **form: str) -> Any:
    files = {"file": ("points.npz", content, "application/octet-stream")}
    return client.post("/v1/datasets", files=files, data=form, headers=auth)


def stored_files(settings: Settings) -> list[Path]:
    return [path for path in settings.uploads_dir.rglob("*") if path.is_file()]


@BOTH_BACKENDS
def test_an_upload_is_stored_listed_and_usable_in_a_job(
    client: TestClient, auth: dict[str, str], app_settings: Settings,
    submit: Callable[..., JsonDict], published: Callable[[], list[str]],
) -> None:
    response = upload(client, auth, npz(**good_arrays()), description="six features")
    assert response.status_code == 201, response.text
    info = DatasetInfo.model_validate(response.json())
    assert info.id.startswith("upload:") and info.name == "points" and not info.builtin
    assert (info.kind, info.input_shape, info.num_classes, info.rows) == ("vector", [6], 4, 40)
    assert info.description == "six features"
    (path,) = stored_files(app_settings)
    assert path.name == f"{info.id.removeprefix('upload:')}.npz"
    listed = client.get("/v1/datasets", headers=auth).json()
    assert [entry["id"] for entry in listed] == [*BUILTIN_DATASETS, info.id]
    job = submit(data={"dataset": info.id}, training={"epochs": 1, "batch_size": 8})
    assert job["progress"]["total_steps"] == 4  # 40 rows, 20% held out, batches of 8
    assert published() == [job["id"]]


def test_builtin_data_sets_are_described(client: TestClient, auth: dict[str, str]) -> None:
    listed = {entry["id"]: entry for entry in client.get("/v1/datasets", headers=auth).json()}
    assert listed["digits"]["input_shape"] == [1, 8, 8] and listed["digits"]["rows"] == 1797
    assert listed["spiral"]["kind"] == "vector" and listed["spiral"]["num_classes"] == 3
    assert all(entry["builtin"] and entry["description"] for entry in listed.values())


def test_another_teams_upload_cannot_be_used_or_seen(
    client: TestClient, auth: dict[str, str], other_key: str
) -> None:
    dataset_id = upload(client, auth, npz(**good_arrays())).json()["id"]
    theirs = {"Authorization": f"Bearer {other_key}"}
    spec = {"data": {"dataset": dataset_id}, "training": {"steps": 5}}
    response = client.post("/v1/jobs", json=spec, headers=theirs)
    assert response.status_code == 422, response.text
    assert (response.json()["field"], response.json()["code"]) == ("data.dataset", "invalid_spec")
    assert dataset_id not in {entry["id"] for entry in
                              client.get("/v1/datasets", headers=theirs).json()}
    unknown = {**spec, "data": {"dataset": "upload:nope"}}
    assert client.post("/v1/jobs", json=unknown, headers=theirs).json()["field"] == "data.dataset"


def test_an_upload_over_the_limit_is_413_and_leaves_nothing(
    client: TestClient, auth: dict[str, str], app_settings: Settings, database: Database,
) -> None:
    noise = np.random.default_rng(1).normal(size=(2000, 40))  # ~640 kB, incompressible
    response = upload(client, auth, npz(x=noise, y=np.zeros(2000, dtype=np.int64)))
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert stored_files(app_settings) == [] and count_rows(database, "datasets") == 0


def test_a_file_just_over_the_limit_inside_the_framing_slack_is_413(
    client: TestClient, auth: dict[str, str], app_settings: Settings,
) -> None:
    content = npz(**good_arrays()) + b"\0" * app_settings.max_upload_bytes
    response = upload(client, auth, content[: app_settings.max_upload_bytes + 10])
    assert response.status_code == 413 and response.json()["field"] == "file"
    assert stored_files(app_settings) == []


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (npz(x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4, dtype=int)), "object array"),
        (b"\x80\x04K\x01.", "not an .npz"),  # a pickle
        (npz(x=np.zeros((4, 2))), "missing array"),
        (npz(**good_arrays(), z=np.zeros(3)), "unexpected arrays ['z']"),
        (npz(x=np.array([["a", "b"]] * 4), y=np.zeros(4, dtype=int)), "must be numeric"),
        (npz(x=np.zeros((4, 2)), y=np.zeros(4)), "integer class labels"),
        (npz(x=np.zeros((4, 2)), y=np.array([0, 1, -1, 0])), "negative labels"),
        (npz(x=np.zeros((4, 2)), y=np.array([0, 1, 1])), "3 labels for 4 rows"),
        (npz(x=np.zeros(4), y=np.zeros(4, dtype=int)), "(rows, features)"),
        (npz(x=np.full((4, 2), np.nan), y=np.array([0, 1, 0, 1])), "NaN"),
        (npz(**good_arrays(), x_test=np.zeros((3, 6))), "come together"),
        (npz(**good_arrays(), x_test=np.zeros((3, 5)), y_test=np.zeros(3, dtype=int)),
         "x_test rows have shape [5]"),
    ],
)
def test_a_bad_file_is_422_saying_why_and_leaves_nothing(
    client: TestClient, auth: dict[str, str], app_settings: Settings, database: Database,
    content: bytes, needle: str,
) -> None:
    response = upload(client, auth, content)
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["code"], body["field"]) == ("invalid_upload", "file")
    assert needle in body["detail"]
    assert stored_files(app_settings) == [] and count_rows(database, "datasets") == 0


def test_a_test_split_is_recorded(client: TestClient, auth: dict[str, str]) -> None:
    arrays = {**good_arrays(), "x_test": np.ones((5, 6)), "y_test": np.array([0, 1, 2, 3, 7])}
    info = upload(client, auth, npz(**arrays), name="with test").json()
    assert (info["name"], info["num_classes"], info["rows"]) == ("with test", 8, 40)


def test_an_upload_without_a_file_is_422_on_the_file_field(
    client: TestClient, auth: dict[str, str]
) -> None:
    response = client.post("/v1/datasets", data={"name": "x"}, headers=auth)
    assert response.status_code == 422 and response.json()["field"] == "file"
