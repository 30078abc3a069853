"""An uploaded data set on this worker's disk: fetched from the artifact store into a cache under
this worker's home, so a worker needs no volume shared with the API.

Uploads never change (a new upload is a new id), so a cached file of the right size is the
upload; a download goes through a temporary file, so a half-fetched file is never used.
"""

from __future__ import annotations

from pathlib import Path

from store.artifacts import ArtifactStore
from store.datasets import DatasetFile


def local_upload(store: ArtifactStore, upload: DatasetFile, cache: Path) -> Path:
    """A local path of `upload`'s .npz (FileNotFoundError when the store has no such object)."""
    if Path(upload.path).is_absolute():  # recorded before the artifact store: a path on a
        return Path(upload.path)  # volume the API shares with this worker
    target = cache / f"{upload.id}.npz"
    if target.exists() and target.stat().st_size == upload.size_bytes:
        return target
    store.get_file(upload.path, target)
    return target
