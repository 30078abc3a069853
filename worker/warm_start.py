"""A warm start's weights (`model.init.scheme: from_job`): the source job's kept safetensors,
read from the artifact store (the service checked at submit that they exist and fit)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from store import job_artifacts
from store.artifacts import ArtifactStore
from store.db import Database
from store.leases import JobState

if TYPE_CHECKING:
    import torch


def initial_weights(
    database: Database, store: ArtifactStore, state: JobState
) -> dict[str, torch.Tensor] | None:
    """The weights to start from, or None for an initialization from the seed."""
    init = state.spec.model.init
    if init.scheme != "from_job" or init.job is None:
        return None
    from safetensors.torch import load_file

    with database.read() as session:
        _, key = job_artifacts.get_artifact(
            session, job_id=init.job, name=f"weights-{init.which}.safetensors"
        )
    with tempfile.TemporaryDirectory(prefix="gradlab-warm-") as folder:
        path = Path(folder) / "weights.safetensors"
        store.get_file(key, path)
        return load_file(str(path))
