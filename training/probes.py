"""Probes: the distribution of every layer's gradient, weight and activation at a snapshot step.

Cost matters more than elegance here (bench/overhead.py measures it), so a snapshot
- hooks activations only on snapshot steps (ActivationRecorder), never on other steps;
- computes every statistic on the tensors' device with a small, fixed number of operations per
  tensor, and batches what can be batched (non-finite counts, histograms, quantile samples) over
  one concatenation of all tensors;
- copies everything to the host in ONE transfer; the quantiles of a capped random sample are then
  read on the host (NumPy sorts a few thousand numbers ~20x faster than torch.sort on CPU).

Moments (mean, std, min, max, l2, unit_std) follow torch's NaN semantics: a tensor holding NaN or
Inf reports non-finite moments and an empty histogram, and nan_count/inf_count say how many.
Standard deviations are population ones (correction 0), so one-unit layers report 0, not NaN.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import numpy as np
import torch
from gradlab_client.spec import RELU_FAMILY
from torch.utils.hooks import RemovableHandle

from training.model import ProbedLayer
from training.types import Histogram, Snapshot, SnapshotKind

QUANTILE_SAMPLE = 1024  # per tensor; a tensor at most this big is read exactly
QUANTILES = (0.01, 0.5, 0.99)
_MOMENTS = ("mean", "std", "min", "max", "l2", "zero_fraction", "unit_std")  # device order
_KIND_ORDER: tuple[SnapshotKind, ...] = ("gradient", "weight", "activation")


@dataclass(frozen=True)
class ProbeTensor:
    kind: SnapshotKind
    layer: str
    depth: int
    tensor: torch.Tensor
    unit_dim: int  # the dim that indexes the layer's units


class ActivationRecorder:
    """Forward hooks on the hidden layers' activation modules, for the duration of a `with`."""

    def __init__(self, layers: list[ProbedLayer]) -> None:
        self._layers = [layer for layer in layers if layer.activation is not None]
        self._handles: list[RemovableHandle] = []
        self.outputs: dict[str, torch.Tensor] = {}

    def __enter__(self) -> ActivationRecorder:
        for layer in self._layers:
            assert layer.activation is not None
            self._handles.append(layer.activation.register_forward_hook(self._hook(layer.name)))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _hook(self, name: str) -> Callable[[torch.nn.Module, object, torch.Tensor], None]:
        def record(module: torch.nn.Module, inputs: object, output: torch.Tensor) -> None:
            self.outputs[name] = output.detach()

        return record


def collect(
    layers: list[ProbedLayer], kinds: list[SnapshotKind], activations: dict[str, torch.Tensor]
) -> list[ProbeTensor]:
    """The tensors to summarize, kind by kind (gradient, weight, activation), in depth order.

    A weight's units are its output dim 0, an embedding's its dim 1 (a row is a category, not a
    unit); an activation's units are its feature/channel dim 1.
    """
    found: list[ProbeTensor] = []
    for kind in _KIND_ORDER:
        if kind not in kinds:
            continue
        for layer in layers:
            unit_dim = 1 if layer.type == "embedding" else 0
            if kind == "weight":
                found.append(ProbeTensor(kind, layer.name, layer.depth, layer.weight.detach(), unit_dim))
            elif kind == "gradient":
                grad = layer.weight.grad
                grad = torch.zeros_like(layer.weight) if grad is None else grad.detach()
                found.append(ProbeTensor(kind, layer.name, layer.depth, grad, unit_dim))
            elif layer.name in activations:
                found.append(ProbeTensor(kind, layer.name, layer.depth, activations[layer.name], 1))
    return found


def summarize(
    step: int, probes: list[ProbeTensor], *, bins: int, activation: str, generator: torch.Generator
) -> list[Snapshot]:
    """One Snapshot per probed tensor, with one device-to-host copy for all of them."""
    if not probes:
        return []
    tensors = [p.tensor.float() for p in probes]
    moments = torch.stack([_moments(x, p.unit_dim) for x, p in zip(tensors, probes, strict=True)])
    # collect() puts gradients first, so rows 0..len(logs)-1 of moments are theirs.
    logs = [x.abs().log10() for x, p in zip(tensors, probes, strict=True) if p.kind == "gradient"]
    lo, hi = moments[:, 2], moments[:, 3]
    log_lo = _least_finite(logs, moments)
    log_hi = torch.maximum(lo[: len(logs)].abs(), hi[: len(logs)].abs()).log10()
    counts = _histograms([*tensors, *logs], torch.cat([lo, log_lo]), torch.cat([hi, log_hi]), bins)
    acts = [x for x, p in zip(tensors, probes, strict=True) if p.kind == "activation"]
    extras = _activation_stats(acts, activation)
    samples = [_sample(x, generator) for x in tensors]
    parts = [moments, log_lo, counts, extras, *samples]
    packed = torch.cat([part.reshape(-1).double() for part in parts]).cpu().numpy()
    return _unpack(step, probes, tensors, packed, bins)


def _moments(x: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """mean, std, min, max, l2, non-zero count and unit_std * sqrt(units) of one tensor, stacked
    (the host divides; every op saved counts on a small model).

    Plain sums rather than torch.std_mean / std(dim): those use Welford's update, 5-20x slower on
    CPU here. The units are first shifted by the first unit, so identical units give exactly 0
    (a mean of equal floats need not equal them, and symmetry is what unit_std is there to show).
    """
    lo, hi = torch.aminmax(x)
    mean = x.sum() / x.numel()
    std = torch.linalg.vector_norm(x - mean) / x.numel() ** 0.5
    l2 = torch.linalg.vector_norm(x)
    nonzero = torch.count_nonzero(x).to(x.dtype)
    if x.dim() > 1 and x.shape[unit_dim] > 1:
        shifted = x - x.narrow(unit_dim, 0, 1)
        centered = shifted - shifted.mean(dim=unit_dim, keepdim=True)
        # square/sum/sqrt, not vector_norm(dim): 4x faster for a strided dim on CPU
        unit_spread = centered.square_().sum(dim=unit_dim).sqrt_().mean()
    else:
        unit_spread = torch.zeros_like(mean)
    return torch.stack([mean, std, lo, hi, l2, nonzero, unit_spread])


def _least_finite(logs: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """Per tensor of log10|g|, the smallest finite value: the log of the least non-zero |g|.
    Zeros (-inf) are lifted to float max first; an all-zero gradient gets float max."""
    if not logs:
        return like.new_zeros(0)
    top = torch.finfo(like.dtype).max
    return torch.stack([g.nan_to_num(neginf=top).amin() for g in logs])


def _histograms(tensors: list[torch.Tensor], lo: torch.Tensor, hi: torch.Tensor, bins: int) -> torch.Tensor:
    """Counts (T, bins) of each tensor over its own [lo, hi], filled by one scatter.

    A value lands in column floor((x - lo) * bins / (hi - lo)), the maximum in the last one; a
    constant tensor fills column 0. A row without finite bounds (the tensor holds NaN/Inf) stays
    empty: its lo becomes NaN, so all its values turn NaN and go to a discarded column. The -inf
    of log10(0) lands in column 0 of a log row; the host takes the zeros out again.
    """
    width = hi - lo
    ok = torch.isfinite(lo) & torch.isfinite(hi)
    scale = torch.where(ok & (width > 0), bins / width, torch.zeros_like(width))
    start = torch.where(ok, lo, torch.full_like(lo, float("nan")))
    columns = [
        (x - x0).mul_(s).clamp_(0, bins - 1).reshape(-1)  # NaN stays NaN
        for x, x0, s in zip(tensors, start, scale, strict=True)
    ]
    sizes = tuple(column.numel() for column in columns)
    # Column `bins` of each row collects NaN; integer row offsets keep the binning exact.
    index = torch.cat(columns).nan_to_num_(nan=bins).long()
    index += _row_offsets(sizes, bins + 1, str(index.device))
    counts = torch.zeros(len(tensors) * (bins + 1), dtype=torch.int64, device=index.device)
    counts.scatter_add_(0, index, torch.ones_like(index))
    return counts.view(len(tensors), bins + 1)[:, :bins]


@functools.lru_cache(maxsize=8)
def _row_offsets(sizes: tuple[int, ...], stride: int, device: str) -> torch.Tensor:
    """row * stride for every element of the concatenated rows (the same every snapshot)."""
    rows = torch.arange(len(sizes), device=device) * stride
    return torch.repeat_interleave(rows, torch.tensor(sizes, device=device))


def _activation_stats(acts: list[torch.Tensor], activation: str) -> torch.Tensor:
    """(A, 2): saturated_fraction (tanh |a|>0.99, sigmoid a<0.01 or a>0.99) and dead_fraction
    (units that are <= 0 for every example and position: ReLU family only)."""
    rows = []
    for a in acts:
        zero = a.new_zeros(())
        if activation == "tanh":
            saturated = torch.count_nonzero(a.abs() > 0.99) / a.numel()
        elif activation == "sigmoid":
            saturated = torch.count_nonzero((a - 0.5).abs() > 0.49) / a.numel()
        else:
            saturated = zero
        dead = zero
        if activation in RELU_FAMILY:
            other = [d for d in range(a.dim()) if d != 1]
            dead = torch.count_nonzero(a.amax(dim=other) <= 0) / a.shape[1]
        rows.append(torch.stack([saturated, dead]))
    return torch.stack(rows) if rows else torch.zeros(0)


def _sample(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The tensor whole when it has at most QUANTILE_SAMPLE entries, else that many drawn at
    random (with replacement) for the quantiles."""
    flat = x.reshape(-1)
    if flat.numel() <= QUANTILE_SAMPLE:
        return flat
    picks = torch.randint(flat.numel(), (QUANTILE_SAMPLE,), generator=generator, device=x.device)
    return flat[picks]


def _unpack(
    step: int, probes: list[ProbeTensor], tensors: list[torch.Tensor], packed: np.ndarray, bins: int
) -> list[Snapshot]:
    count, grads, acts = len(probes), _count(probes, "gradient"), _count(probes, "activation")
    sizes = np.array([x.numel() for x in tensors], dtype=np.float64)
    reader = _Reader(packed)
    moments = reader.take(count, len(_MOMENTS)).copy()
    log_lo = reader.take(grads, 1)[:, 0]
    hist = reader.take(count + grads, bins).copy()
    extras = reader.take(acts, 2).tolist()
    quantiles = _quantiles([reader.take(1, int(min(n, QUANTILE_SAMPLE)))[0] for n in sizes]).tolist()
    zeros = sizes - moments[:, 5]
    moments[:, 5] = zeros / sizes  # the device counted non-zeros
    moments[:, 6] /= np.sqrt([x.shape[p.unit_dim] if x.dim() > 1 else 1 for x, p in zip(tensors, probes, strict=True)])
    moments[moments[:, 2] == moments[:, 3], 1] = 0.0  # a constant tensor: exactly 0, not rounding
    with np.errstate(divide="ignore", invalid="ignore"):
        log_hi = np.log10(np.maximum(np.abs(moments[:grads, 2]), np.abs(moments[:grads, 3])))
    # Zeros (log10 = -inf) fell into column 0 of a log row that has a width.
    spread = np.isfinite(log_lo) & np.isfinite(log_hi) & (log_hi > log_lo)
    hist[count:, 0] -= np.where(spread, zeros[:grads], 0.0)
    counts = hist.astype(np.int64).tolist()
    edges = _edges(moments[:, 2], moments[:, 3], bins) + _edges(log_lo, log_hi, bins)
    nonfinite = _nonfinite_counts(tensors, moments).tolist()
    rows = moments.tolist()
    snapshots = []
    for i, probe in enumerate(probes):
        stats = dict(zip(_MOMENTS, rows[i], strict=True))
        stats.update(nan_count=nonfinite[i][0], inf_count=nonfinite[i][1])
        stats.update(zip(("p1", "p50", "p99"), quantiles[i], strict=True))
        log_histogram = None
        if probe.kind == "gradient":
            log_histogram = Histogram(edges[count + i], counts[count + i])
        if probe.kind == "activation":
            saturated, dead = extras[i - (count - acts)]  # activations come last
            stats.update(saturated_fraction=saturated, dead_fraction=dead)
        histogram = Histogram(edges[i], counts[i])
        snapshots.append(Snapshot(step, probe.kind, probe.layer, probe.depth, stats, histogram, log_histogram))
    return snapshots


def _count(probes: list[ProbeTensor], kind: str) -> int:
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


def _nonfinite_counts(tensors: list[torch.Tensor], moments: np.ndarray) -> np.ndarray:
    """(T, 2) NaN and Inf counts. Only a tensor with a non-finite min or max can hold any, so they
    are counted (in a second, small transfer) only for those: never in a healthy run."""
    counts = np.zeros((len(tensors), 2))
    suspect = [i for i in range(len(tensors)) if not np.isfinite(moments[i, 2:4]).all()]
    if suspect:
        found = [torch.stack([tensors[i].isnan().sum(), tensors[i].isinf().sum()]) for i in suspect]
        counts[suspect] = torch.stack(found).cpu().numpy()
    return counts


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
