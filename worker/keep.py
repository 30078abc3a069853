"""What a succeeded job keeps: its weights, exports and model card, put in the artifact store and
recorded on the job. Runs on the worker after the last step and before the job is marked
succeeded, so a caller who sees `succeeded` can download the model at once.

A failed export (or an unreachable store) is written on the job as `artifact_errors` and costs
the job nothing: the numbers it recorded are still right. The export code itself is the training
core's (training/export.py); this module decides names, layout and what a failure means.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from diagnosis.findings import Finding
from store import job_artifacts
from store.artifacts import ArtifactStore, sha256_of
from store.db import Database
from store.errors import NotFound, StaleAttempt, Unavailable
from store.job_artifacts import KeptFile, job_prefix
from store.leases import JobState
from training.kept import TrainedModel
from training.types import TrainingCallbacks

log = logging.getLogger(__name__)
CARD = "model-card.json"
CARD_FORMAT = 1


def weights_name(which: str) -> str:
    return f"weights-{which}.safetensors"


def export_names(which: str) -> dict[str, str]:
    return {"torchscript": f"model-{which}.pt", "onnx": f"model-{which}.onnx"}


class ModelKeeper:
    """Takes the trained model from the training core, then keeps its files."""

    def __init__(self, database: Database, store: ArtifactStore, state: JobState,
                 attempt: int) -> None:
        self._database, self._store = database, store
        self._state, self._attempt = state, attempt
        self.trained: TrainedModel | None = None

    def attach(self, callbacks: TrainingCallbacks) -> TrainingCallbacks:
        def take(trained: TrainedModel) -> None:
            self.trained = trained

        return replace(callbacks, on_trained=take)

    def keep(self, summary: dict[str, float | None] | None, findings: list[Finding]) -> None:
        """Write, upload and record the files; never raises for a failed export."""
        if self.trained is None:
            return
        job_id = self._state.id
        try:
            with tempfile.TemporaryDirectory(prefix=f"gradlab-keep-{job_id}-") as folder:
                made, errors = make_files(self.trained, self._state, Path(folder),
                                          summary or {}, findings)
                files = [self._upload(path, kind, which) for path, kind, which in made]
        except Exception as error:  # the store is down, the disk is full: report, go on
            log.exception("job %s: its files could not be kept", job_id)
            files, errors = [], {"artifacts": f"not kept: {type(error).__name__}"}
        try:
            with self._database.transaction() as session:
                job_artifacts.record_artifacts(session, job_id=job_id, attempt=self._attempt,
                                               files=files, errors=errors)
        except (StaleAttempt, NotFound, Unavailable):
            log.warning("job %s attempt %d: its artifacts were not recorded", job_id,
                        self._attempt)

    def _upload(self, path: Path, kind: str, which: str | None) -> KeptFile:
        key = f"{job_prefix(self._state.id)}/{path.name}"
        sha256 = sha256_of(path)
        info = self._store.put_file(key, path)
        return KeptFile(path.name, kind, which, key, info.size, sha256)


def make_files(
    trained: TrainedModel, state: JobState, folder: Path, summary: dict[str, float | None],
    findings: list[Finding],
) -> tuple[list[tuple[Path, str, str | None]], dict[str, str]]:
    """Write the job's files into `folder`: [(path, kind, which)] and {name: export error}."""
    from training.export import (
        ExportError,
        export_onnx,
        export_torchscript,
        inference_module,
        raw_validation_inputs,
        save_weights,
    )

    keep = state.spec.training.keep
    whiches = ["best", "final"] if keep == "both" else [keep]
    made: list[tuple[Path, str, str | None]] = []
    errors: dict[str, str] = {}
    inputs = raw_validation_inputs(trained.dataset)
    for which in whiches:
        path = folder / weights_name(which)
        metadata = {"job_id": state.id, "which": which, "step": str(trained.step_of(which))}
        save_weights(trained.weights(which), path, metadata)
        made.append((path, "weights", which))
        module = inference_module(trained, which)
        exporters = {"torchscript": export_torchscript, "onnx": export_onnx}
        for kind, name in export_names(which).items():
            try:
                exporters[kind](module, inputs, folder / name)
            except ExportError as error:
                log.warning("job %s: %s", state.id, error)
                errors[name] = str(error)
                continue
            made.append((folder / name, kind, which))
    card = model_card(trained, state, summary, findings, [p.name for p, _, _ in made], errors)
    (folder / CARD).write_text(json.dumps(card, indent=2, sort_keys=True), encoding="utf-8")
    made.append((folder / CARD, "model_card", None))
    return made, errors


def model_card(
    trained: TrainedModel, state: JobState, summary: dict[str, float | None],
    findings: list[Finding], files: list[str], errors: dict[str, str],
) -> dict[str, Any]:
    """What a reader needs to use (and to trust) the model without the service: the spec, the
    layer plan, the results, the diagnosis and the preprocessing the exports apply."""
    dataset = trained.dataset
    scaling = dataset.scaling
    return {
        "format": CARD_FORMAT,
        "job_id": state.id,
        "spec": state.spec.model_dump(mode="json"),
        "layers": _layers(trained),
        "summary": summary,
        "diagnosis": [finding.to_dict() for finding in findings],
        "kept": {which: trained.step_of(which) for which in ("best", "final")
                 if which in _whiches(state)},
        "input": {
            "shape": list(dataset.shape.input_shape),
            "dtype": str(dataset.x_val.dtype).removeprefix("torch."),
            "num_classes": dataset.shape.num_classes,
            "normalize": state.spec.data.normalize if scaling is not None else "none",
            # The exports apply this themselves: feed them rows as they were uploaded.
            "scaling": None if scaling is None else {
                "axis": 1, "shift": scaling.shift, "scale": scaling.scale,
            },
        },
        "files": files,
        "export_errors": errors,
    }


def _whiches(state: JobState) -> list[str]:
    keep = state.spec.training.keep
    return ["best", "final"] if keep == "both" else [keep]


def _layers(trained: TrainedModel) -> list[dict[str, Any]]:
    layers = getattr(trained.model, "layers", None)
    if layers is None:
        return []
    return [
        {"name": layer.name, "type": layer.type, "shape": list(layer.weight.shape),
         "parameters": layer.parameters, "depth": layer.depth}
        for layer in layers()
    ]

