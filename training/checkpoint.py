"""Checkpoints: written atomically, read without unpickling anything but tensors and plain data.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts (RNG states are uint8
tensors), so torch.load(weights_only=True) can read it: a checkpoint file is never trusted to
run code. Writing goes to a temporary file in the same folder, then os.replace, so a reader (or
a resumed attempt after a crash) sees the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = 1


class CheckpointError(ValueError):
    """The checkpoint cannot be used to resume this spec."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save({"format": FORMAT, **state}, file)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the rename makes it visible
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, *, fingerprint: str) -> dict[str, Any]:
    """The state saved at ``path``; CheckpointError when it was written for another spec."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {state.get('format')!r}, expected {FORMAT}")
    if state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path} was written for a different model, data, optimizer or seed; "
            "resume only with the spec that wrote it"
        )
    return state
