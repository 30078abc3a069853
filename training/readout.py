"""Reading a snapshot on the host: the one packed transfer of summarize() becomes Snapshots.

The device sends sums where that saves it an operation (the sum, not the mean; norms, not
standard deviations; non-zero counts); they are turned into the reported statistics here. The
quantiles are read here too, from each tensor's capped sample: NumPy sorts a few thousand
numbers ~20x faster than torch.sort on CPU, and the sample is small enough to copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from training.types import Histogram, Snapshot

if TYPE_CHECKING:
    from training.probes import ProbeTensor

QUANTILE_SAMPLE = 1024  # per tensor; a tensor at most this big is read exactly
QUANTILES = (0.01, 0.5, 0.99)
MOMENTS = ("mean", "std", "min", "max", "l2", "zero_fraction", "unit_std")  # the device's order


def read_snapshots(
    step: int, probes: Sequence[ProbeTensor], packed: np.ndarray, bins: int, nonfinite: np.ndarray
) -> list[Snapshot]:
    """Snapshots from the packed transfer; ``nonfinite`` holds (nan, inf, zero) counts per tensor,
    the zero count NaN where the device's non-zero count is exact (see _nonfinite_counts)."""
    count, grads = len(probes), _count(probes, "gradient")
    acts = _count(probes, "activation")
    reader = _Reader(packed)
    moments = reader.take(count, len(MOMENTS)).copy()
    log_lo = reader.take(grads, 1)[:, 0]
    extras = reader.take(acts, 2).tolist()
    sizes = [p.tensor.numel() for p in probes]
    quantiles = _quantiles([reader.take(1, min(n, QUANTILE_SAMPLE))[0] for n in sizes]).tolist()
    hist = reader.take(count + grads, bins).copy()
    zeros = _finish_moments(probes, moments, nonfinite)
    edges, counts = _finish_histograms(moments, log_lo, hist, zeros, bins)
    rows, nonfinite_rows = moments.tolist(), nonfinite.tolist()
    snapshots = []
    for i, probe in enumerate(probes):
        stats = dict(zip(MOMENTS, rows[i], strict=True))
        stats.update(nan_count=nonfinite_rows[i][0], inf_count=nonfinite_rows[i][1])
        stats.update(zip(("p1", "p50", "p99"), quantiles[i], strict=True))
        if probe.kind == "activation":  # activations come last
            saturated, dead = extras[i - (count - acts)]
            stats.update(saturated_fraction=saturated, dead_fraction=dead)
        log_histogram = Histogram(edges[count + i], counts[count + i]) if i < grads else None
        histogram = Histogram(edges[i], counts[i])
        snapshots.append(
            Snapshot(step, probe.kind, probe.layer, probe.depth, stats, histogram, log_histogram)
        )
    return snapshots


def _finish_moments(
    probes: Sequence[ProbeTensor], moments: np.ndarray, nonfinite: np.ndarray
) -> np.ndarray:
    """Turn the device's sums into the reported statistics, in place; return the zero counts."""
    sizes = np.array([p.tensor.numel() for p in probes], dtype=np.float64)
    moments[:, 0] /= sizes  # mean, from the sum
    moments[:, 1] /= np.sqrt(sizes)  # std, from the norm of the centered tensor
    zeros = np.where(np.isnan(nonfinite[:, 2]), sizes - moments[:, 5], nonfinite[:, 2])
    moments[:, 5] = zeros / sizes  # zero_fraction
    units = [p.tensor.shape[p.unit_dim] if p.tensor.dim() > 1 else 1 for p in probes]
    moments[:, 6] /= np.sqrt(units)  # unit_std
    moments[moments[:, 2] == moments[:, 3], 1] = 0.0  # a constant tensor: exactly 0, not rounding
    return zeros


def _finish_histograms(
    moments: np.ndarray, log_lo: np.ndarray, hist: np.ndarray, zeros: np.ndarray, bins: int
) -> tuple[list[list[float]], list[list[int]]]:
    """Edges and counts of the linear rows, then of the log rows (the gradients, first)."""
    grads = len(log_lo)
    lo, hi = moments[:, 2], moments[:, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_hi = np.log10(np.maximum(np.abs(lo[:grads]), np.abs(hi[:grads])))
    # Zeros (log10 = -inf) fell into column 0 of a log row that has a width: take them out.
    spread = np.isfinite(log_lo) & np.isfinite(log_hi) & (log_hi > log_lo)
    hist[len(moments) :, 0] -= np.where(spread, zeros[:grads], 0.0)
    edges = _edges(np.r_[lo, log_lo], np.r_[hi, log_hi], bins)
    return edges, hist.astype(np.int64).tolist()


def _count(probes: Sequence[ProbeTensor], kind: str) -> int:
    return sum(1 for p in probes if p.kind == kind)


def _quantiles(samples: list[np.ndarray]) -> np.ndarray:
    """(T, 3) quantiles over each sample's finite values (NaN when none): samples of one length
    are sorted together, as one table."""
    result = np.full((len(samples), len(QUANTILES)), np.nan)
    by_length: dict[int, list[int]] = {}
    for row, sample in enumerate(samples):
        by_length.setdefault(len(sample), []).append(row)
    for rows in by_length.values():
        table = np.stack([samples[row] for row in rows])
        if np.isfinite(table).all():
            result[rows] = _interpolate(np.sort(table, axis=1))
            continue
        for row in rows:  # NaN/Inf present (a diverging tensor): drop them, row by row
            finite = samples[row][np.isfinite(samples[row])]
            result[row] = _interpolate(np.sort(finite)[None, :])[0]
    return result


def _interpolate(ordered: np.ndarray) -> np.ndarray:
    """Linear-interpolated QUANTILES of each sorted row (torch.quantile's default)."""
    n = ordered.shape[1]
    if n == 0:
        return np.full((len(ordered), len(QUANTILES)), np.nan)
    position = np.asarray(QUANTILES) * (n - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    low, high = ordered[:, below], ordered[:, above]
    return low + (high - low) * (position - below)


def _edges(lo: np.ndarray, hi: np.ndarray, bins: int) -> list[list[float]]:
    """bins + 1 edges from lo to hi per row; rows without finite bounds get zeros."""
    ok = np.isfinite(lo) & np.isfinite(hi)
    lo, hi = np.where(ok, lo, 0.0), np.where(ok, hi, 0.0)
    steps = np.linspace(0.0, 1.0, bins + 1)[None, :]
    edges: list[list[float]] = (lo[:, None] + (hi - lo)[:, None] * steps).tolist()
    return edges


class _Reader:
    """Reads consecutive (rows, cols) blocks out of the packed transfer."""

    def __init__(self, packed: np.ndarray) -> None:
        self._packed, self._at = packed, 0

    def take(self, rows: int, cols: int) -> np.ndarray:
        block = self._packed[self._at : self._at + rows * cols].reshape(rows, cols)
        self._at += rows * cols
        return block
