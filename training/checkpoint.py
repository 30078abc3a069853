"""Checkpoints: written atomically, read without unpickling anything but tensors and plain data.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts (RNG states are uint8
tensors), so torch.load(weights_only=True) can read it: a checkpoint file is never trusted to
run code. Writing goes to a temporary file in the same folder, then os.replace, so a reader (or
a resumed attempt after a crash) sees the old checkpoint or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from gradlab_contract.spec import JobSpec

FORMAT = 1


class CheckpointError(ValueError):
    """The checkpoint cannot be used to resume this spec."""


def fingerprint(spec: JobSpec) -> str:
    """What a checkpoint's state depends on. Resuming under another model, data, optimizer,
    schedule, regularization, seed or batch size is refused; more steps, other telemetry or
    another evaluation cadence are the same run, continued."""
    parts = spec.model_dump(
        mode="json", include={"data", "model", "optimizer", "schedule", "regularization"}
    )
    parts["seed"], parts["batch_size"] = spec.training.seed, spec.training.batch_size
    return json.dumps(parts, sort_keys=True)


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


def load_checkpoint(path: Path, spec: JobSpec) -> dict[str, Any]:
    """The state saved at ``path``; CheckpointError when it was written for another spec."""
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("format") != FORMAT:
        found = state.get("format")
        raise CheckpointError(f"{path}: checkpoint format {found!r}, expected {FORMAT}")
    if state.get("fingerprint") != fingerprint(spec):
        raise CheckpointError(
            f"{path} was written for a different model, data, optimizer or seed; "
            "resume only with the spec that wrote it"
        )
    return state
