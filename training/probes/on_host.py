"""The probes' reductions for tensors on the CPU: NumPy over one concatenation of them.

On the CPU the host is the device, so nothing crosses a bus (the tensors are read through
zero-copy NumPy views into one concatenation); what costs is the number of operations. torch
spends ~3-5 us dispatching each op on a small CPU tensor, NumPy ~1 us, and ``ufunc.reduceat``
reduces every tensor's segment of the concatenation in a single call, so a snapshot takes a few
dozen calls whatever the number of layers (bench/overhead.py measures it).

The statistics are the ones on_device computes, with the same float32 binning (the same
histograms, count for count); the moments are summed in float64.
tests/training/test_probe_stages.py holds the two stages to each other.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from gradlab_contract.spec import RELU_FAMILY

from training.probes.readout import Reductions, sample_positions
from training.probes.tensors import UNIT_STD_EXAMPLES, ProbeInfo, ProbeTensor


@dataclass(frozen=True)
class _Layout:
    """Where each tensor sits in the concatenation (the same at every snapshot of a run)."""

    sizes: np.ndarray  # elements per tensor
    starts: np.ndarray  # first index of each tensor
    sample_index: np.ndarray  # the entries the quantiles are read from, tensor after tensor
    sample_ends: list[int]  # where each tensor's sample ends in sample_index


@functools.lru_cache(maxsize=8)
def _layout(sizes: tuple[int, ...]) -> _Layout:
    sized = np.array(sizes, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sized)[:-1]])
    picks = [start + sample_positions(size) for start, size in zip(starts, sizes, strict=True)]
    ends = np.cumsum([len(pick) for pick in picks]).tolist()
    return _Layout(sized, starts, np.concatenate(picks), ends)


def reduce_on_host(tensors: Sequence[ProbeTensor], *, bins: int, activation: str) -> Reductions:
    flat = np.concatenate([p.tensor.numpy().reshape(-1) for p in tensors])
    probes = [p.info() for p in tensors]
    grads = sum(1 for p in probes if p.kind == "gradient")
    layout = _layout(tuple(p.size for p in probes))
    arrays = [
        flat[start : start + p.size].reshape(p.shape)
        for start, p in zip(layout.starts.tolist(), probes, strict=True)
    ]
    lo = np.minimum.reduceat(flat, layout.starts)
    hi = np.maximum.reduceat(flat, layout.starts)
    wide = flat.astype(np.float64)
    total, spread, l2 = _sums(wide, layout)
    nonzero = np.add.reduceat((flat != 0).view(np.uint8), layout.starts, dtype=np.int64)
    units = _unit_spreads(wide, layout.starts, probes)
    moments = np.stack([total, spread, lo, hi, l2, nonzero, units], axis=1)
    grad_values = flat[: layout.starts[grads]] if grads < len(arrays) else flat
    log_floor, log_values = _logs(grad_values, layout.starts[:grads])
    with np.errstate(divide="ignore"):
        log_top = np.log(np.maximum(np.abs(lo[:grads]), np.abs(hi[:grads])))
    log_rows = [
        log_values[start : start + p.size]
        for start, p in zip(layout.starts[:grads].tolist(), probes[:grads], strict=True)
    ]
    counts = _histograms(
        [a.reshape(-1) for a in arrays] + log_rows,
        np.concatenate([lo, log_floor]),
        np.concatenate([hi, log_top]),
        bins,
    )
    acts = [(a, t.nonlinearity or activation)
            for a, t in zip(arrays, tensors, strict=True) if t.kind == "activation"]
    return Reductions(
        moments=moments,
        log_floor=log_floor,
        activation=np.array([_activation_stats(a, name) for a, name in acts]).reshape(-1, 2),
        samples=np.split(flat[layout.sample_index], layout.sample_ends[:-1]),
        counts=counts,
        nonfinite=_nonfinite_counts(arrays, lo, hi),
    )


def _sums(wide: np.ndarray, layout: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each tensor's sum, the norm of its centered values and its l2 norm, from the float64
    concatenation (one pass: in float64 the centered norm loses ~1e-8 of the mean, below
    float32's own resolution, and a constant tensor's std is set to exactly 0 in readout)."""
    total = np.add.reduceat(wide, layout.starts)
    squares = np.add.reduceat(np.square(wide), layout.starts)
    centered = np.maximum(squares - total * total / layout.sizes, 0.0)
    return total, np.sqrt(centered), np.sqrt(squares)


# The unit index of a run's snapshots is kept while it holds at most this many entries (32 MiB);
# a bigger model's is rebuilt at each snapshot (for it, a few more calls cost nothing).
UNIT_INDEX_CACHED = 4 * 2**20


@dataclass(frozen=True)
class _UnitIndex:
    """The unit domain: for every (tensor, position) group, the tensor's entries at that position
    in each of its units, units contiguous, groups in tensor order."""

    gather: np.ndarray  # indices into the concatenation
    first: np.ndarray  # per group, the index of its unit 0
    lengths: np.ndarray  # per group, its number of units
    starts: np.ndarray  # per group, where it begins in gather
    tensor_starts: np.ndarray  # per tensor with units, its first group
    groups: np.ndarray  # per tensor with units, its number of groups
    tensors: np.ndarray  # the tensors with units (2+ dims, 2+ units)


_UnitKey = tuple[tuple[int, tuple[int, ...], int, bool], ...]  # start, shape, unit_dim, batch


def _unit_index(key: _UnitKey) -> _UnitIndex:
    gathers, lengths, groups, tensors = [], [], [], []
    for i, (start, shape, unit_dim, batch) in enumerate(key):
        units = shape[unit_dim] if len(shape) > 1 else 1
        if units < 2:
            continue
        before, after = math.prod(shape[:unit_dim]), math.prod(shape[unit_dim + 1 :])
        rows = min(before, UNIT_STD_EXAMPLES) if batch else before  # an activation's first
        offsets = (  # [row, position, unit] -> start + (row * units + unit) * after + position
            np.arange(rows)[:, None, None] * (units * after)
            + np.arange(after)[None, :, None]
            + np.arange(units)[None, None, :] * after
        )
        gathers.append(start + offsets.reshape(-1))
        lengths.append(np.full(rows * after, units))
        groups.append(rows * after)
        tensors.append(i)
    if not tensors:
        empty = np.zeros(0, dtype=np.int64)
        return _UnitIndex(empty, empty, empty, empty, empty, empty, empty)
    gather, length = np.concatenate(gathers), np.concatenate(lengths)
    starts = np.concatenate([[0], np.cumsum(length)[:-1]])
    tensor_starts = np.concatenate([[0], np.cumsum(groups)[:-1]])
    return _UnitIndex(
        gather, gather[starts], length, starts, tensor_starts, np.array(groups), np.array(tensors)
    )


_cached_unit_index = functools.lru_cache(maxsize=4)(_unit_index)


def _unit_spreads(
    wide: np.ndarray, starts: np.ndarray, probes: Sequence[ProbeInfo]
) -> np.ndarray:
    """Per tensor, the mean over positions of the norm across units of the tensor shifted by its
    first unit (so identical units give exactly 0) and centered; on_device's _moments explains
    it. All tensors at once, in float64: one gather of the unit domain, then reduceat per group
    (sum and sum of squares give the centered norm) and per tensor (the mean)."""
    key = tuple(
        (start, p.shape, p.unit_dim, p.kind == "activation")
        for start, p in zip(starts.tolist(), probes, strict=True)
    )
    domain = sum(p.size for p in probes if len(p.shape) > 1)
    index = _cached_unit_index(key) if domain <= UNIT_INDEX_CACHED else _unit_index(key)
    spreads = np.zeros(len(probes))
    if not len(index.tensors):
        return spreads
    with np.errstate(invalid="ignore"):  # NaN and Inf tensors: NaN, as on_device gives
        shifted = wide[index.gather]
        shifted -= np.repeat(wide[index.first], index.lengths)  # unit 0 is exactly 0
        sums = np.add.reduceat(shifted, index.starts)
        squares = np.add.reduceat(np.square(shifted, out=shifted), index.starts)
        squares -= sums * sums / index.lengths
    norms = np.sqrt(np.maximum(squares, 0.0, out=squares), out=squares)
    spreads[index.tensors] = np.add.reduceat(norms, index.tensor_starts) / index.groups
    return spreads


def _logs(grads: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ln of each gradient's least non-zero |g| (inf for an all-zero one), and ln|g| of every
    entry (-inf for a zero). Natural logs: NumPy's float32 log is ~4x faster than its log10,
    and binning ln|g| over [ln a, ln b] is binning log10|g| over [log10 a, log10 b]."""
    magnitudes = np.abs(grads)
    nonzero = np.where(magnitudes > 0, magnitudes, np.float32(np.inf))
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.log(np.minimum.reduceat(nonzero, starts)) if len(starts) else nonzero[:0]
        return floor, np.log(magnitudes, out=magnitudes)


def _histograms(rows: list[np.ndarray], lo: np.ndarray, hi: np.ndarray, bins: int) -> np.ndarray:
    """(rows, bins) counts of each row over its own [lo, hi], in float32 as on_device bins them:
    column floor((x - lo) * (bins / (hi - lo))), the maximum in the last column, a constant row
    (and a log row's zeros, at -inf) in column 0; a row without finite bounds (its tensor holds
    NaN or Inf) stays empty. Row by row into one scratch array: a few calls per row, and no
    per-value copy of the bounds (on a CNN's activations that halved the time)."""
    counts = np.zeros((len(rows), bins), dtype=np.int64)
    finite = (np.isfinite(lo) & np.isfinite(hi)).tolist()
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        width = hi - lo
        scale = np.where(width > 0, np.float32(bins) / width, np.float32(1)).astype(np.float32)
    scratch = np.empty(max(len(row) for row in rows), dtype=np.float32)
    for r, values in enumerate(rows):
        if not finite[r]:
            continue
        column = scratch[: len(values)]
        np.subtract(values, lo[r], out=column)
        column *= scale[r]
        np.clip(column, 0, bins - 1, out=column)
        counts[r] = np.bincount(column.astype(np.int32), minlength=bins)
    return counts


def _activation_stats(a: np.ndarray, activation: str) -> tuple[float, float]:
    """saturated_fraction (tanh |a| > 0.99, sigmoid a < 0.01 or a > 0.99) and dead_fraction
    (units that are <= 0 for every example and position: ReLU family only)."""
    saturated = 0.0
    if activation == "tanh":
        saturated = np.count_nonzero(np.abs(a) > np.float32(0.99)) / a.size
    elif activation == "sigmoid":
        saturated = np.count_nonzero(np.abs(a - np.float32(0.5)) > np.float32(0.49)) / a.size
    dead = 0.0
    if activation in RELU_FAMILY:
        others = tuple(d for d in range(a.ndim) if d != 1)
        positive = np.maximum(a, np.float32(0)).sum(axis=others)
        dead = np.count_nonzero(positive == 0) / a.shape[1]
    return float(saturated), float(dead)


def _nonfinite_counts(arrays: list[np.ndarray], lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """NaN, Inf and zero counts of the tensors with a non-finite min or max; the others hold no
    NaN or Inf, and their zero count is exact in the moments (NaN here)."""
    counts = np.full((len(arrays), 3), np.nan)
    counts[:, :2] = 0.0
    for i in np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi))).tolist():
        a = arrays[i]
        counts[i] = (np.isnan(a).sum(), np.isinf(a).sum(), np.count_nonzero(a == 0))
    return counts
