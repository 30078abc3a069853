"""The input of a diagnosis: what a run recorded, as plain numbers.

A RunRecord holds the spec, the model's layers, per-layer snapshot statistics (no histograms)
and metric series. The worker builds one from what it keeps in memory while training
(diagnosis.builder.RecordBuilder), the service from the store; both hand in whatever they hold:
the training core's dataclasses, the API models, or plain dicts with the same fields.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np
from gradlab_contract.spec import JobSpec

UPDATE_RATIO = "update_ratio/"  # + layer name: |W_after - W_before| / |W_before| of one step


class Series(NamedTuple):
    steps: Sequence[int]
    values: Sequence[float | None]  # None (as the API sends it) means not finite


@dataclass(frozen=True)
class LayerRecord:
    name: str
    type: str  # linear | conv1d | conv2d | embedding
    depth: int
    shape: tuple[int, ...] = ()  # the weight's shape

    @property
    def units(self) -> int:
        """How many units the layer has: a weight's output dim (an embedding's columns)."""
        if not self.shape:
            return 0
        return self.shape[1] if self.type == "embedding" and len(self.shape) > 1 else self.shape[0]

    @classmethod
    def of(cls, item: Any) -> LayerRecord:
        get = _getter(item)
        return cls(str(get("name")), str(get("type")), int(get("depth")),
                   tuple(int(n) for n in get("shape", ()) or ()))


@dataclass(frozen=True)
class SnapshotRecord:
    step: int
    kind: str  # gradient | weight | activation
    layer: str
    depth: int
    stats: Mapping[str, float | None]

    def stat(self, name: str) -> float:
        """The statistic as a float; NaN when it is missing or was not finite."""
        value = self.stats.get(name)
        return math.nan if value is None else float(value)

    @classmethod
    def of(cls, item: Any) -> SnapshotRecord:
        if isinstance(item, SnapshotRecord):
            return item
        get = _getter(item)
        return cls(int(get("step")), str(get("kind")), str(get("layer")), int(get("depth")),
                   dict(get("stats")))


@dataclass(frozen=True)
class RunRecord:
    spec: JobSpec
    layers: Sequence[LayerRecord]
    snapshots: Sequence[SnapshotRecord]
    metrics: Mapping[str, Series]
    # "running" while it trains; then how it ended: succeeded, diverged, failed, cancelled, stopped.
    status: str = "running"
    final_step: int = 0
    total_steps: int = 0
    _index: dict[tuple[str, int], dict[str, SnapshotRecord]] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        spec: JobSpec,
        *,
        layers: Iterable[Any] = (),
        snapshots: Iterable[Any] = (),
        metrics: Mapping[str, Series | tuple[Sequence[int], Sequence[float | None]]] | None = None,
        status: str = "running",
        final_step: int = 0,
        total_steps: int = 0,
    ) -> RunRecord:
        """A record from objects or dicts with the fields of LayerRecord and SnapshotRecord."""
        series = {name: Series(*pair) for name, pair in (metrics or {}).items()}
        # The last step anything was recorded at, unless the caller knows better.
        final_step = final_step or max((max(s.steps, default=0) for s in series.values()),
                                       default=0)
        return cls(spec, [LayerRecord.of(item) for item in layers],
                   [SnapshotRecord.of(item) for item in snapshots], series, status,
                   final_step, total_steps)

    @property
    def final(self) -> bool:
        return self.status != "running"

    def __post_init__(self) -> None:
        for snap in self.snapshots:
            self._index.setdefault((snap.kind, snap.step), {})[snap.layer] = snap

    # -- snapshots --------------------------------------------------------------------------

    def steps(self, kind: str) -> list[int]:
        """The steps with snapshots of `kind`, ascending."""
        return sorted(step for k, step in self._index if k == kind)

    def at(self, kind: str, step: int) -> list[SnapshotRecord]:
        """The snapshots of `kind` at `step`, from the input layer to the output."""
        return sorted(self._index.get((kind, step), {}).values(), key=lambda s: s.depth)

    def recent_steps(self, kind: str, window: int) -> list[int]:
        return self.steps(kind)[-window:]

    # -- layers -----------------------------------------------------------------------------

    @cached_property
    def output_layer(self) -> LayerRecord | None:
        return max(self.layers, key=lambda layer: layer.depth, default=None)

    @cached_property
    def hidden_layers(self) -> list[LayerRecord]:
        """Layers followed by the activation: all but the embeddings and the output layer."""
        out = self.output_layer
        return sorted((layer for layer in self.layers
                       if layer is not out and layer.type != "embedding"),
                      key=lambda layer: layer.depth)

    def layer(self, name: str) -> LayerRecord | None:
        return next((layer for layer in self.layers if layer.name == name), None)

    @cached_property
    def num_classes(self) -> int | None:
        out = self.output_layer
        return out.units if out is not None and out.units else None

    # -- metrics ----------------------------------------------------------------------------

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) as arrays in step order; non-finite values are NaN or +-inf, a
        missing series is empty."""
        found = self.metrics.get(name)
        if found is None or not found.steps:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        steps = np.asarray(found.steps, dtype=np.int64)
        values = np.array([math.nan if v is None else v for v in found.values], dtype=float)
        order = np.argsort(steps, kind="stable")
        return steps[order], values[order]

    def update_ratio_names(self) -> dict[str, str]:
        """Layer name -> the name of its update-ratio series."""
        return {name[len(UPDATE_RATIO):]: name for name in self.metrics
                if name.startswith(UPDATE_RATIO)}


def metrics_of(series: Iterable[Any]) -> dict[str, Series]:
    """Metric series from objects with name, steps and values (the API's MetricSeries)."""
    return {item.name: Series(list(item.steps), list(item.values)) for item in series}


def _getter(item: Any) -> Any:
    if isinstance(item, Mapping):
        return lambda name, *default: item.get(name, *default)
    return lambda name, *default: getattr(item, name, *default)
