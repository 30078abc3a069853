"""The artifact store (store/artifacts.py) on the local folder and on a real S3 server."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.artifacts import open_artifact_store, sha256_of
from store.settings import Settings


def test_put_get_range_list_delete(artifact_settings: Settings, tmp_path: Path) -> None:
    store = open_artifact_store(artifact_settings)
    payload = bytes(range(256)) * 5000  # 1.28 MB: more than one read chunk
    source = tmp_path / "weights.bin"
    source.write_bytes(payload)
    info = store.put_file("jobs/j1/weights.bin", source)
    store.put_bytes("jobs/j1/card.json", b"{}")
    store.put_bytes("jobs/j10/other", b"x")  # a sibling prefix, not under jobs/j1/

    assert info.size == len(payload) and info.etag
    assert store.head("jobs/j1/weights.bin") == info
    assert store.get_bytes("jobs/j1/weights.bin") == payload
    assert b"".join(store.stream("jobs/j1/weights.bin", start=1000, end=1010)) == payload[1000:1010]
    assert b"".join(store.stream("jobs/j1/weights.bin", start=len(payload) - 3)) == payload[-3:]
    target = tmp_path / "down" / "weights.bin"
    store.get_file("jobs/j1/weights.bin", target)
    assert sha256_of(target) == sha256_of(source)
    assert [i.key for i in store.listing("jobs/j1")] == ["jobs/j1/card.json", "jobs/j1/weights.bin"]

    assert store.delete_prefix("jobs/j1") == 2
    assert store.listing("jobs/j1") == [] and store.head("jobs/j1/card.json") is None
    assert store.get_bytes("jobs/j10/other") == b"x"
    store.delete(["jobs/j10/other", "jobs/never"])  # a missing key is no error
    assert store.head("jobs/j10/other") is None


def test_missing_object_is_file_not_found(artifact_settings: Settings, tmp_path: Path) -> None:
    store = open_artifact_store(artifact_settings)
    with pytest.raises(FileNotFoundError):
        store.get_bytes("jobs/none/weights.bin")
    with pytest.raises(FileNotFoundError):
        store.get_file("jobs/none/weights.bin", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_local_default_is_under_home(settings: Settings) -> None:
    store = open_artifact_store(settings)
    store.put_bytes("uploads/t/a.npz", b"data")
    assert (settings.home / "artifacts" / "uploads" / "t" / "a.npz").read_bytes() == b"data"


def test_artifact_url_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="artifact_url"):
        Settings(home=tmp_path, artifact_url="ftp://bucket", _env_file=None)
