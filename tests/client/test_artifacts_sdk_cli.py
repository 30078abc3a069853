"""client.jobs.artifacts / download / delete, client.usage, and `gradlab artifacts`, `download`,
`delete`, `usage`, on the app in process with files put in its artifact store as a worker would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from gradlab_client import Client, NotFound
from gradlab_client.artifacts import ChecksumMismatch

from store import job_artifacts, leases
from store.artifacts import open_artifact_store
from store.db import Database
from store.job_artifacts import KeptFile
from store.settings import Settings

CONTENT = {"weights-best.safetensors": b"w" * 3000, "model-card.json": b'{"format": 1}'}


@pytest.fixture
def kept_job(sdk: Client, spiral: dict[str, Any], database: Database, db_settings: Settings,
             claim: Callable[[str], int]) -> str:
    """A succeeded job whose files are in the store and recorded, as worker/keep.py leaves it."""
    job = sdk.jobs.create(spiral)
    attempt = claim(job.id)
    store = open_artifact_store(db_settings)
    files = []
    for name, data in CONTENT.items():
        key = f"jobs/{job.id}/{name}"
        info = store.put_bytes(key, data)
        kind = "weights" if name.endswith("safetensors") else "model_card"
        files.append(KeptFile(name, kind, "best" if kind == "weights" else None, key, info.size,
                              hashlib.sha256(data).hexdigest()))
    with database.transaction() as session:
        job_artifacts.record_artifacts(session, job_id=job.id, attempt=attempt, files=files,
                                       errors={"model-best.onnx": "onnx: differs"})
        leases.finish_job(session, job_id=job.id, attempt=attempt, status="succeeded")
    return job.id


def test_list_download_and_usage(sdk: Client, kept_job: str, tmp_path: Path) -> None:
    listed = {a.name: a for a in sdk.jobs.artifacts(kept_job)}
    assert set(listed) == set(CONTENT) and listed["weights-best.safetensors"].size == 3000
    assert sdk.jobs.get(kept_job).artifact_errors == {"model-best.onnx": "onnx: differs"}
    path = sdk.jobs.download(kept_job, name="weights-best.safetensors", path=tmp_path)
    assert path == tmp_path / "weights-best.safetensors" and path.read_bytes() == b"w" * 3000
    assert sdk.jobs.model_card(kept_job) == {"format": 1}
    usage = sdk.usage()
    assert usage.artifact_bytes == 3000 + len(CONTENT["model-card.json"])
    assert usage.used_bytes == usage.artifact_bytes + usage.upload_bytes
    with pytest.raises(NotFound):
        sdk.jobs.download(kept_job, name="model-best.onnx", path=tmp_path)


def test_a_corrupt_download_is_not_kept(sdk: Client, kept_job: str, db_settings: Settings,
                                        tmp_path: Path) -> None:
    open_artifact_store(db_settings).put_bytes(f"jobs/{kept_job}/weights-best.safetensors",
                                               b"x" * 3000)
    target = tmp_path / "downloads"
    target.mkdir()
    with pytest.raises(ChecksumMismatch):
        sdk.jobs.download(kept_job, name="weights-best.safetensors", path=target / "w.bin")
    assert list(target.iterdir()) == []


def test_another_team_sees_nothing(test_client: Any, other_key: str, kept_job: str) -> None:
    headers = {"Authorization": f"Bearer {other_key}"}
    assert test_client.get(f"/v1/jobs/{kept_job}/artifacts", headers=headers).status_code == 404
    assert test_client.get(f"/v1/jobs/{kept_job}/artifacts/model-card.json",
                           headers=headers).status_code == 404
    assert test_client.delete(f"/v1/jobs/{kept_job}", headers=headers).status_code == 404


def test_cli_artifacts_download_delete(gradlab: Callable[..., tuple[int, str, str]],
                                       kept_job: str, tmp_path: Path,
                                       db_settings: Settings) -> None:
    code, out, _ = gradlab("artifacts", kept_job)
    assert code == 0 and "weights-best.safetensors" in out and "3,000" in out
    code, out, _ = gradlab("--json", "artifacts", kept_job)
    assert {item["name"] for item in json.loads(out)} == set(CONTENT)
    code, out, err = gradlab("download", kept_job, "model-card.json", "-o", str(tmp_path))
    assert code == 0 and Path(out.strip()).read_bytes() == CONTENT["model-card.json"]
    code, out, _ = gradlab("usage")
    assert code == 0 and "of" in out
    code, _, err = gradlab("delete", kept_job)
    assert code == 0
    assert open_artifact_store(db_settings).listing(f"jobs/{kept_job}") == []
    code, _, err = gradlab("artifacts", kept_job)
    assert code != 0 and "not found" in err.lower()
