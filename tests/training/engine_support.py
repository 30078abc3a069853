"""Tiny data sets, specs and a recording callback set for the training-engine tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from gradlab_contract.models import Layer, Snapshot
from gradlab_contract.shapes import DataKind, DataShape
from gradlab_contract.spec import JobSpec

from training.data import Dataset
from training.types import TrainingCallbacks

# The built-in set whose family matches each kind of data (only the spec's validation reads it:
# the tests pass their own tensors as the dataset).
FAMILY = {"vector": "spiral", "sequence": "mnist1d", "image": "digits", "categorical": "ctr"}
INPUT = {"vector": (6,), "sequence": (1, 16), "image": (1, 8, 8), "categorical": (3,)}


def tiny_dataset(
    kind: DataKind = "vector",
    *,
    n_train: int = 96,
    n_val: int = 40,
    classes: int = 3,
    input_shape: tuple[int, ...] | None = None,
    spread: float = 2.0,
    seed: int = 0,
) -> Dataset:
    """Learnable data: each class is a unit Gaussian blob around a center drawn with std
    ``spread`` (categorical: ids tied to the label)."""
    shape = input_shape or INPUT[kind]
    generator = torch.Generator().manual_seed(seed)
    n = n_train + n_val
    if kind == "categorical":
        classes, cardinality = 2, 10
        y = torch.randint(0, 2, (n,), generator=generator)
        noise = torch.randint(0, cardinality, (n, shape[0]), generator=generator)
        x = torch.where(
            torch.rand(n, shape[0], generator=generator) < 0.6, y[:, None] * 5 + noise % 5, noise
        )
        data_shape = DataShape(kind, shape, classes, n_train, n_val, (cardinality,) * shape[0])
    else:
        y = torch.randint(0, classes, (n,), generator=generator)
        centers = torch.randn((classes, *shape), generator=generator) * spread
        x = centers[y] + torch.randn((n, *shape), generator=generator)
        data_shape = DataShape(kind, shape, classes, n_train, n_val)
    return Dataset(data_shape, x[:n_train], y[:n_train], x[n_train:], y[n_train:])


def make_spec(kind: DataKind = "vector", **sections: Any) -> JobSpec:
    """A small valid spec; keyword arguments replace or extend its sections."""
    document: dict[str, Any] = {
        "data": {"dataset": FAMILY[kind]},
        "model": {"kind": "embedding_mlp" if kind == "categorical" else "mlp", "hidden": [16, 16]},
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"steps": 20, "batch_size": 16, "eval_every": 10, "device": "cpu"},
        "telemetry": {"snapshot_every": 10, "bins": 8},
    }
    for name, value in sections.items():
        document[name] = {**document.get(name, {}), **value} if isinstance(value, dict) else value
    return JobSpec.model_validate(document)


@dataclass
class Recorder:
    """Collects everything the engine reports, in order."""

    layers: list[Layer] = field(default_factory=list)
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    snapshots: dict[int, list[Snapshot]] = field(default_factory=dict)
    checkpoints: list[int] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    events: list[tuple[str, int]] = field(default_factory=list)
    stop_after: int | None = None

    def callbacks(self) -> TrainingCallbacks:
        return TrainingCallbacks(
            on_layers=self._on_layers,
            on_metrics=self._on_metrics,
            on_snapshots=self._on_snapshots,
            on_progress=self._on_progress,
            on_checkpoint=self._on_checkpoint,
            should_stop=self._should_stop,
        )

    def _on_layers(self, layers: list[Layer]) -> None:
        self.layers = layers

    def _on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        assert step not in self.metrics, f"step {step} reported twice"
        self.metrics[step] = metrics
        self.events.append(("metrics", step))

    def _on_snapshots(self, step: int, snapshots: list[Snapshot]) -> None:
        self.snapshots[step] = snapshots
        self.events.append(("snapshots", step))

    def _on_progress(self, step: int, total: int) -> None:
        self.progress.append(step)

    def _on_checkpoint(self, step: int) -> None:
        self.checkpoints.append(step)
        self.events.append(("checkpoint", step))

    def _should_stop(self) -> bool:
        return (
            self.stop_after is not None
            and bool(self.progress)
            and self.progress[-1] >= self.stop_after
        )

    def series(self, name: str) -> dict[int, float]:
        return {step: m[name] for step, m in self.metrics.items() if name in m}

    def without_timing(self) -> dict[int, dict[str, float]]:
        return {
            step: {k: v for k, v in m.items() if k != "step_time"}
            for step, m in self.metrics.items()
        }


def snapshot(snapshots: list[Snapshot], kind: str, layer: str) -> Snapshot:
    return next(s for s in snapshots if s.kind == kind and s.layer == layer)
