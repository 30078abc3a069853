"""The artifact store: where a job's weights, exports, model card and checkpoints, and the teams'
uploaded data sets, are kept as objects under keys such as ``jobs/<id>/weights-best.safetensors``.

One small interface (ArtifactStore), one implementation over obstore, which speaks to a local
folder (the embedded default: ``{home}/artifacts``) and to S3-compatible object storage with the
same calls. So the API and every worker may run on different hosts with no shared volume: each
reads and writes objects, never another host's files. obstore is a kept library (Rust's
object_store crate): multipart uploads, ranged and streamed reads, retries.

Writes are whole objects (a put is atomic on S3 and, through a rename, on the local folder), so a
reader sees an object completely or not at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import obstore
from obstore.store import LocalStore, S3Store

from store.settings import Settings

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    modified: datetime | None


class ArtifactStore(Protocol):
    """What the service and the workers need of object storage, and nothing more."""

    def put_file(self, key: str, source: Path) -> ObjectInfo: ...

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo: ...

    def get_file(self, key: str, target: Path) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def stream(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]: ...

    def head(self, key: str) -> ObjectInfo | None: ...

    def listing(self, prefix: str) -> list[ObjectInfo]: ...

    def delete(self, keys: list[str]) -> None: ...

    def delete_prefix(self, prefix: str) -> int: ...


class ObjectStoreArtifacts:
    """ArtifactStore over an obstore store (LocalStore or S3Store)."""

    def __init__(self, store: Any, description: str) -> None:
        self._store = store
        self.description = description  # for logs: never holds a credential

    def put_file(self, key: str, source: Path) -> ObjectInfo:
        obstore.put(self._store, key, source)  # obstore uploads large files in parts
        return self._required_head(key)

    def put_bytes(self, key: str, data: bytes) -> ObjectInfo:
        obstore.put(self._store, key, data)
        return self._required_head(key)

    def get_file(self, key: str, target: Path) -> None:
        """Download to `target` through a temporary file, so a reader never sees half a file;
        FileNotFoundError when there is no such object."""
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                             suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as out:
                for chunk in self.stream(key):
                    out.write(chunk)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        return b"".join(self.stream(key))

    def stream(self, key: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The object's bytes [start, end) in chunks; FileNotFoundError when it is missing."""
        options: dict[str, Any] = {}
        if start or end is not None:
            options["range"] = (start, end) if end is not None else {"offset": start}
        result = obstore.get(self._store, key, options=options or None)  # type: ignore[arg-type]
        for chunk in result.stream(min_chunk_size=CHUNK_BYTES):
            yield bytes(chunk)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            meta = obstore.head(self._store, key)
        except FileNotFoundError:
            return None
        return _info(meta)

    def listing(self, prefix: str) -> list[ObjectInfo]:
        """The objects under `prefix/`, by key."""
        found: list[ObjectInfo] = []
        for batch in obstore.list(self._store, prefix=prefix.rstrip("/") + "/"):
            found.extend(_info(meta) for meta in batch)
        return sorted(found, key=lambda info: info.key)

    def delete(self, keys: list[str]) -> None:
        """Delete the objects; a missing one is no error."""
        for key in keys:
            with contextlib.suppress(FileNotFoundError):
                obstore.delete(self._store, key)

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix/`; return how many there were."""
        keys = [info.key for info in self.listing(prefix)]
        self.delete(keys)
        return len(keys)

    def _required_head(self, key: str) -> ObjectInfo:
        info = self.head(key)
        if info is None:  # a store that loses a write it acknowledged is broken
            raise OSError(f"object {key} is missing right after it was written")
        return info


def _info(meta: Any) -> ObjectInfo:
    return ObjectInfo(
        key=str(meta["path"]), size=int(meta["size"]), etag=meta.get("e_tag"),
        modified=meta.get("last_modified"),
    )


def open_artifact_store(settings: Settings) -> ObjectStoreArtifacts:
    """The store settings.artifact_url names: s3://bucket/prefix, file:///folder, or (unset)
    the folder {home}/artifacts."""
    url = settings.artifact_url
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        options: dict[str, Any] = {"region": settings.artifact_region}
        if settings.artifact_endpoint:
            options["endpoint"] = settings.artifact_endpoint
            if settings.artifact_endpoint.startswith("http://"):
                options["client_options"] = {"allow_http": True}
        if settings.artifact_access_key_id:
            options["access_key_id"] = settings.artifact_access_key_id
        if settings.artifact_secret_access_key is not None:
            options["secret_access_key"] = settings.artifact_secret_access_key.get_secret_value()
        prefix = parsed.path.strip("/") or None
        store = S3Store(parsed.netloc, prefix=prefix, **options)
        return ObjectStoreArtifacts(store, f"s3://{parsed.netloc}/{prefix or ''}")
    folder = Path(parsed.path) if parsed.scheme == "file" else settings.home / "artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return ObjectStoreArtifacts(LocalStore(folder, mkdir=True), str(folder))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()
