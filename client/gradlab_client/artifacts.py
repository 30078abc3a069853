"""Downloading what a job kept, checked, and loading its model (with the `torch` extra)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from gradlab_contract.models import Artifact

from gradlab_client._http import HTTP
from gradlab_client.errors import GradlabError

if TYPE_CHECKING:
    import torch

Which = Literal["best", "final"]
CARD = "model-card.json"


class ChecksumMismatch(GradlabError):
    """A downloaded file's sha256 is not the one the service recorded (nothing is kept)."""


def artifact_path(job_path: str, name: str) -> str:
    return f"{job_path}/artifacts/{quote(name, safe='')}"


def download(http: HTTP, job_path: str, artifact: Artifact, target: Path) -> Path:
    """Stream the artifact into `target` (a file, or a folder to put it in), through a temporary
    file that becomes `target` only once its sha256 matches."""
    target = target / artifact.name if target.is_dir() else target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                         suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            response = http.request("GET", artifact_path(job_path, artifact.name), retry=True,
                                    stream=True, headers={"Accept": "*/*"})
            try:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    out.write(chunk)
            finally:
                response.close()
        if digest.hexdigest() != artifact.sha256:
            raise ChecksumMismatch(
                f"{artifact.name}: sha256 {digest.hexdigest()} differs from the recorded "
                f"{artifact.sha256}; the download is discarded"
            )
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def load_model(files: dict[str, Path], which: Which) -> torch.nn.Module:
    """The TorchScript export of `which`, in eval mode. It takes raw rows (the preprocessing
    the job trained with is inside it) and returns logits."""
    try:
        import torch
    except ImportError as error:  # pragma: no cover - depends on the install
        raise GradlabError("load_model needs torch: pip install 'gradlab-client[torch]'") from error
    with warnings.catch_warnings():  # torch.jit is deprecated in favour of torch.export, whose
        # files need the model's Python code: TorchScript loads without it, so it stays.
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(files[f"model-{which}.pt"]), map_location="cpu")
    module.eval()
    return module


def read_card(path: Path) -> dict[str, Any]:
    card: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return card
