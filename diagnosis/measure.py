"""Small robust summaries the rules share: medians over snapshot steps, windows of a series,
a fitted trend. Medians everywhere: one odd mini-batch must neither raise nor hide a finding."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from diagnosis.record import RunRecord


def median(values: Iterable[float]) -> float:
    """The median of the finite values; NaN when there are none."""
    kept = [v for v in values if math.isfinite(v)]
    return float(np.median(kept)) if kept else math.nan


def layer_medians(record: RunRecord, kind: str, stat: str, steps: list[int]) -> dict[str, float]:
    """Per layer, the median of one statistic over `steps`, in depth order."""
    collected: dict[str, list[float]] = {}
    for step in steps:
        for snap in record.at(kind, step):
            collected.setdefault(snap.layer, []).append(snap.stat(stat))
    return {layer: median(values) for layer, values in collected.items()}


def between(steps: np.ndarray, values: np.ndarray, start: float, end: float) -> np.ndarray:
    """The values at steps in (start, end]."""
    return values[(steps > start) & (steps <= end)]


def initial(values: np.ndarray) -> float:
    """Where a series began: the median of its first 5% (at least 3 points), finite only."""
    head = values[: max(3, len(values) // 20)]
    return median(head.tolist())


def ending(steps: np.ndarray, values: np.ndarray, fraction: float = 0.1) -> float:
    """Where a series ended: the median of its last `fraction` of steps (at least 3 points)."""
    if len(steps) == 0:
        return math.nan
    tail = between(steps, values, steps[-1] - fraction * (steps[-1] - steps[0]), steps[-1])
    if len(tail) < 3:
        tail = values[-3:]
    return median(tail.tolist())


def trend(steps: np.ndarray, values: np.ndarray, since: float) -> tuple[float, float] | None:
    """(slope per step, fitted value at the last step) of a least-squares line through the
    finite points after `since`; None with fewer than 3 of them."""
    keep = (steps > since) & np.isfinite(values)
    if keep.sum() < 3 or np.ptp(steps[keep]) == 0:
        return None
    slope, intercept = np.polyfit(steps[keep].astype(float), values[keep], 1)
    return float(slope), float(intercept + slope * steps[-1])


def smooth3(values: np.ndarray) -> np.ndarray:
    """A running median of three: a single spike disappears, a trend stays."""
    if len(values) < 3:
        return values.copy()
    padded = np.concatenate([values[:1], values, values[-1:]])
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def first_nonfinite(steps: np.ndarray, values: np.ndarray) -> int | None:
    bad = ~np.isfinite(values)
    return int(steps[bad][0]) if bad.any() else None


def nonfinite_words(steps: np.ndarray, values: np.ndarray) -> str:
    """"NaN" or "infinite": what the first non-finite value of the series is."""
    bad = values[~np.isfinite(values)]
    return "infinite" if len(bad) and np.isinf(bad[0]) else "NaN"
