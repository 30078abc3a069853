"""Reading a snapshot on the host: a stage's Reductions become Snapshots.

Both stages (on_device, on_host) hand over sums where that saves them an operation (the sum,
not the mean; norms, not standard deviations; non-zero counts); they are turned into the
reported statistics here. The quantiles are read here too, from each tensor's capped sample:
NumPy sorts a few thousand numbers ~20x faster than torch.sort on CPU.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gradlab_contract.models import Histogram, Snapshot

from training.probes.tensors import ProbeInfo

QUANTILE_SAMPLE = 1024  # per tensor; a tensor at most this big is read exactly
QUANTILES = (0.01, 0.5, 0.99)
MOMENTS = ("mean", "std", "min", "max", "l2", "zero_fraction", "unit_std")  # the stages' order


@functools.lru_cache(maxsize=64)
def sample_positions(size: int) -> np.ndarray:
    """The entries of a tensor of ``size`` entries that its quantiles are read from: all of them
    up to QUANTILE_SAMPLE, else QUANTILE_SAMPLE drawn at random (with replacement) once per size.
    A fixed random subset estimates each snapshot's quantiles as well as a fresh draw would, and
    costs no random numbers per snapshot (drawing them cost more than the sort)."""
    if size <= QUANTILE_SAMPLE:
        return np.arange(size)
    return np.random.default_rng(size).integers(0, size, QUANTILE_SAMPLE)


@dataclass(frozen=True)
class Reductions:
    """What a stage computed from the probed tensors (in probe order: gradients first,
    activations last), as host arrays.

    moments: (T, 7) in MOMENTS order, as sum, norm of the centered tensor, min, max, l2,
        non-zero count, and the mean over positions of the norm across units of the tensor
        shifted by its first unit and centered;
    log_floor: (G,) ln of each gradient's least non-zero |g| (its log histogram starts there);
    activation: (A, 2) saturated and dead fractions;
    samples: per tensor, the values its quantiles are read from;
    counts: (T + G, bins) the linear histograms, then the gradients' histograms of ln|g| (with
        their zeros in column 0, taken out here);
    nonfinite: (T, 3) NaN, Inf and zero counts, the zero count NaN where the non-zero count in
        moments is exact (a tensor with NaN or Inf gets its counts here instead).
    """

    moments: np.ndarray
    log_floor: np.ndarray
    activation: np.ndarray
    samples: list[np.ndarray]
    counts: np.ndarray
    nonfinite: np.ndarray


def read_snapshots(step: int, probes: Sequence[ProbeInfo], reduced: Reductions) -> list[Snapshot]:
    count, grads = len(probes), _count(probes, "gradient")
    acts = _count(probes, "activation")
    moments, nonfinite = reduced.moments.astype(np.float64), reduced.nonfinite
    log_lo = reduced.log_floor.astype(np.float64) / math.log(10)
    extras = reduced.activation.tolist()
    finite = np.isfinite(moments[:, 2]) & np.isfinite(moments[:, 3])
    quantiles = _quantiles(reduced.samples, finite.tolist()).tolist()
    hist = reduced.counts.astype(np.float64)
    bins = hist.shape[1]
    zeros = _finish_moments(probes, moments, nonfinite)
    edges, counts = _finish_histograms(moments, log_lo, hist, zeros, bins)
    rows, nonfinite_rows = moments.tolist(), nonfinite.tolist()
    snapshots = []
    for i, probe in enumerate(probes):
        stats = dict(zip(MOMENTS, rows[i], strict=True))
        stats["nan_count"], stats["inf_count"] = nonfinite_rows[i][0], nonfinite_rows[i][1]
        stats["p1"], stats["p50"], stats["p99"] = quantiles[i]
        if probe.kind == "activation":  # activations come last
            stats["saturated_fraction"], stats["dead_fraction"] = extras[i - (count - acts)]
        log_histogram = (
            Histogram(edges=edges[count + i], counts=counts[count + i]) if i < grads else None
        )
        histogram = Histogram(edges=edges[i], counts=counts[i])
        snapshots.append(Snapshot(
            step=step, kind=probe.kind, layer=probe.layer, depth=probe.depth, stats=stats,
            histogram=histogram, log_histogram=log_histogram,
        ))
    return snapshots


def _finish_moments(
    probes: Sequence[ProbeInfo], moments: np.ndarray, nonfinite: np.ndarray
) -> np.ndarray:
    """Turn the stage's sums into the reported statistics, in place; return the zero counts."""
    sizes = np.array([p.size for p in probes], dtype=np.float64)
    moments[:, 0] /= sizes  # mean, from the sum
    moments[:, 1] /= np.sqrt(sizes)  # std, from the norm of the centered tensor
    zeros = np.where(np.isnan(nonfinite[:, 2]), sizes - moments[:, 5], nonfinite[:, 2])
    moments[:, 5] = zeros / sizes  # zero_fraction
    units = [p.units for p in probes]
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
    # Zeros (log = -inf) fell into column 0 of every log row with finite bounds: take them out.
    binned = np.isfinite(log_lo) & np.isfinite(log_hi)
    hist[len(moments) :, 0] -= np.where(binned, zeros[:grads], 0.0)
    edges = _edges(np.concatenate([lo, log_lo]), np.concatenate([hi, log_hi]), bins)
    return edges, hist.astype(np.int64).tolist()


def _count(probes: Sequence[ProbeInfo], kind: str) -> int:
    return sum(1 for p in probes if p.kind == kind)


def _quantiles(samples: list[np.ndarray], finite: list[bool]) -> np.ndarray:
    """(T, 3) quantiles over each sample's finite values (NaN when none). Samples of one length
    are sorted together, as one table; a tensor with NaN or Inf (``finite`` False) alone, after
    dropping them."""
    result = np.full((len(samples), len(QUANTILES)), np.nan)
    by_length: dict[int, list[int]] = {}
    for row, sample in enumerate(samples):
        if finite[row]:
            by_length.setdefault(len(sample), []).append(row)
            continue
        kept = np.sort(sample[np.isfinite(sample)])
        if len(kept):
            result[row] = _interpolate(kept[None, :])[0]
    for rows in by_length.values():
        table = np.array([samples[row] for row in rows])
        table.sort(axis=1)
        result[rows] = _interpolate(table)
    return result


def _interpolate(ordered: np.ndarray) -> np.ndarray:
    """Linear-interpolated QUANTILES of each sorted row (torch.quantile's default)."""
    below, above, fraction = _quantile_positions(ordered.shape[1])
    low = ordered[:, below]
    return low + (ordered[:, above] - low) * fraction


@functools.lru_cache(maxsize=64)
def _quantile_positions(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    position = np.asarray(QUANTILES) * (n - 1)
    below = np.floor(position).astype(np.int64)
    return below, np.minimum(below + 1, n - 1), position - below


def _edges(lo: np.ndarray, hi: np.ndarray, bins: int) -> list[list[float]]:
    """bins + 1 edges from lo to hi per row; rows without finite bounds get zeros."""
    ok = np.isfinite(lo) & np.isfinite(hi)
    lo, hi = np.where(ok, lo, 0.0), np.where(ok, hi, 0.0)
    edges: list[list[float]] = (lo[:, None] + (hi - lo)[:, None] * _steps(bins)).tolist()
    return edges


@functools.lru_cache(maxsize=8)
def _steps(bins: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, bins + 1)[None, :]
