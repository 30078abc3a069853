"""A RunRecord built while a job trains, in bounded memory, from the training callbacks' data.

The worker feeds it every metric row and snapshot as they are reported; a diagnosis at any point
reads ``record()``. What it keeps is what the rules read, and no more:
- every metric series, thinned when it reaches ``max_points`` by keeping the lowest and the
  highest point of each group of four (as the store's downsampling does, so a one-step spike
  and a NaN survive), and always the first point (the loss at initialization);
- the statistics, without histograms, of the first snapshot step and of the latest ``window``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from gradlab_contract.spec import JobSpec

from diagnosis.record import LayerRecord, RunRecord, Series, SnapshotRecord
from diagnosis.thresholds import DEFAULT

MAX_POINTS = 4096


Point = tuple[int, float]


class SeriesBuffer:
    """A metric series at a uniform resolution that halves whenever it reaches `max_points`.

    The points after the first come in buckets of `stride` steps, each kept as its lowest and
    highest point; when full, neighbouring buckets merge (and the stride doubles), so early and
    recent history are summarised alike and no extreme is ever dropped.
    """

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        if max_points < 8:
            raise ValueError("max_points must be at least 8")
        self._max = max_points
        self._first: Point | None = None
        self._buckets: list[list[Point]] = []
        self._pending: list[Point] = []  # the bucket being filled, as its extremes so far
        self._pending_count = 0
        self._stride = 1

    def add(self, step: int, value: float) -> None:
        if self._first is None:
            self._first = (step, value)
            return
        self._pending = _extremes([*self._pending, (step, value)])
        self._pending_count += 1
        if self._pending_count < self._stride:
            return
        self._buckets.append(self._pending)
        self._pending, self._pending_count = [], 0
        if sum(len(bucket) for bucket in self._buckets) >= self._max:
            pairs = zip(self._buckets[::2], self._buckets[1::2], strict=False)
            merged = [_extremes(a + b) for a, b in pairs]
            if len(self._buckets) % 2:
                merged.append(self._buckets[-1])
            self._buckets, self._stride = merged, self._stride * 2

    def points(self) -> list[Point]:
        head = [self._first] if self._first is not None else []
        return head + [p for bucket in self._buckets for p in bucket] + self._pending

    @property
    def steps(self) -> list[int]:
        return [step for step, _ in self.points()]

    @property
    def values(self) -> list[float]:
        return [value for _, value in self.points()]

    def series(self) -> Series:
        points = self.points()
        return Series([step for step, _ in points], [value for _, value in points])


def _extremes(points: list[Point]) -> list[Point]:
    """The lowest and the highest point, in step order (one point when they are the same)."""
    low = min(points, key=lambda point: _order(point[1]))
    high = max(points, key=lambda point: _order(point[1]))
    return sorted({low, high})


def _order(value: float) -> float:
    # A NaN is the highest point of its group: a divergence is the point that must survive.
    return math.inf if math.isnan(value) else value


class RecordBuilder:
    def __init__(
        self, spec: JobSpec, *, window: int = DEFAULT.window, max_points: int = MAX_POINTS
    ) -> None:
        self.spec = spec
        self._max_points = max_points
        self._layers: list[LayerRecord] = []
        self._series: dict[str, SeriesBuffer] = {}
        self._first: list[SnapshotRecord] | None = None
        self._recent: deque[list[SnapshotRecord]] = deque(maxlen=window)
        self.last_step = 0

    def add_layers(self, layers: Iterable[Any]) -> None:
        self._layers = [LayerRecord.of(layer) for layer in layers]

    def add_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            buffer = self._series.get(name)
            if buffer is None:
                buffer = self._series[name] = SeriesBuffer(self._max_points)
            buffer.add(step, float(value))
        self.last_step = max(self.last_step, step)

    def add_snapshots(self, step: int, snapshots: Iterable[Any]) -> None:
        kept = [SnapshotRecord.of(s) for s in snapshots]  # stats only: histograms stay behind
        if not kept:
            return
        if self._first is None:
            self._first = kept
        else:
            self._recent.append(kept)

    def seed(self, record: RunRecord) -> None:
        """Start from what an earlier attempt recorded (a retry resumes from a checkpoint)."""
        self.add_layers(record.layers)
        for name, series in record.metrics.items():
            for step, value in zip(series.steps, series.values, strict=True):
                self.add_metrics(step, {name: math.nan if value is None else value})
        steps = sorted({snap.step for snap in record.snapshots})
        for step in steps:
            self.add_snapshots(step, [s for s in record.snapshots if s.step == step])

    def record(self, *, status: str = "running", total_steps: int = 0) -> RunRecord:
        snapshots = [snap for group in [self._first or [], *self._recent] for snap in group]
        metrics = {name: buffer.series() for name, buffer in self._series.items()}
        return RunRecord(self.spec, list(self._layers), snapshots, metrics, status,
                         self.last_step, total_steps)

