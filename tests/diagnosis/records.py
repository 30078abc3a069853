"""Hand-made RunRecords for the rules' unit tests: a few layers, the statistics and series a
test names, everything else absent (as in a run that recorded only some kinds)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gradlab_contract.spec import JobSpec

from diagnosis import LayerRecord, RunRecord, Series, SnapshotRecord
from tests.diagnosis.scenarios import mlp

LAYERS = [
    LayerRecord("fc1", "linear", 0, (8, 2)),
    LayerRecord("fc2", "linear", 1, (8, 8)),
    LayerRecord("fc3", "linear", 2, (8, 8)),
    LayerRecord("out", "linear", 3, (3, 8)),
]
NAMES = [layer.name for layer in LAYERS]


def spec(**model: Any) -> JobSpec:
    activation = model.pop("activation", "relu")
    optimizer = model.pop("optimizer", None)
    return JobSpec.model_validate(mlp([8, 8, 8], activation, optimizer=optimizer, **model))


def snaps(step: int, kind: str, per_layer: dict[str, dict[str, float | None]]) -> list[
        SnapshotRecord]:
    """Snapshots of `kind` at `step`: {layer: stats}."""
    depth = {name: index for index, name in enumerate(NAMES)}
    return [SnapshotRecord(step, kind, layer, depth[layer], stats)
            for layer, stats in per_layer.items()]


def series(values: Sequence[float | None], start: int = 1, every: int = 1) -> Series:
    return Series(list(range(start, start + every * len(values), every)), list(values))


def falling(steps: int, start: float = 1.1, end: float = 0.05, noise: float = 0.0) -> Series:
    """An exponentially falling loss, as a learning run's, with optional noise."""
    rng = np.random.default_rng(0)
    t = np.arange(steps) / steps
    values = end + (start - end) * np.exp(-6 * t) + noise * rng.standard_normal(steps)
    return series(values.tolist())


def record(
    snapshots: Sequence[SnapshotRecord] = (),
    metrics: dict[str, Series] | None = None,
    *,
    status: str = "running",
    job: JobSpec | None = None,
    layers: Sequence[LayerRecord] = tuple(LAYERS),
) -> RunRecord:
    return RunRecord.build(job or spec(), layers=layers, snapshots=snapshots,
                           metrics=metrics or {}, status=status)


def codes(found: Sequence[Any]) -> list[str]:
    return [finding.code for finding in found]


def roots(found: Sequence[Any]) -> list[str]:
    """The codes of the root causes (findings no other finding explains), in order."""
    return [finding.code for finding in found if finding.caused_by is None]
