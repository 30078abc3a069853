"""The probes' reductions for tensors on an accelerator: torch on the tensors' device, and ONE
copy to the host for all of them.

- every statistic takes a small, fixed number of operations per tensor, and what can be batched
  (histograms, quantile samples) is done over one concatenation of all tensors;
- the quantiles of each tensor's capped sample are read on the host (readout), NumPy sorting a
  few thousand numbers faster than a device round trip per tensor would cost.

Moments (mean, std, min, max, l2, unit_std) follow torch's NaN semantics: a tensor holding NaN or
Inf reports non-finite moments and an empty histogram, and nan_count/inf_count say how many.
Standard deviations are population ones (correction 0), so one-unit layers report 0, not NaN.
CPU tensors go to on_host instead, which computes the same with far fewer calls.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
from gradlab_contract.spec import RELU_FAMILY

from training.probes.readout import MOMENTS, QUANTILE_SAMPLE, Reductions, sample_positions
from training.probes.tensors import UNIT_STD_EXAMPLES, ProbeTensor


def reduce_on_device(probes: Sequence[ProbeTensor], *, bins: int, activation: str) -> Reductions:
    tensors = [p.tensor if p.tensor.dtype == torch.float32 else p.tensor.float() for p in probes]
    moments = torch.stack(
        [
            _moments(x, p.unit_dim, p.kind == "activation")
            for x, p in zip(tensors, probes, strict=True)
        ]
    )
    # collect() puts gradients first, so rows 0..len(logs)-1 of moments are theirs.
    logs = [x.abs().log() for x, p in zip(tensors, probes, strict=True) if p.kind == "gradient"]
    lo, hi = moments[:, 2], moments[:, 3]
    log_lo = _least_finite(logs, moments)
    log_hi = torch.maximum(lo[: len(logs)].abs(), hi[: len(logs)].abs()).log()
    counts = _histograms([*tensors, *logs], torch.cat([lo, log_lo]), torch.cat([hi, log_hi]), bins)
    acts = [(x, p.nonlinearity or activation)
            for x, p in zip(tensors, probes, strict=True) if p.kind == "activation"]
    extras = _activation_stats(acts)
    samples = [_sample(x) for x in tensors]
    floats = torch.cat([part.reshape(-1) for part in (moments, log_lo, extras, *samples)])
    # float64 carries the int64 counts exactly (to 2**53), in the same single copy
    packed = torch.cat([floats.double(), counts.reshape(-1).double()]).cpu().numpy()
    return _unpack(packed, probes, tensors, bins)


def _unpack(
    packed: np.ndarray, probes: Sequence[ProbeTensor], tensors: list[torch.Tensor], bins: int
) -> Reductions:
    count = len(probes)
    grads = sum(1 for p in probes if p.kind == "gradient")
    acts = sum(1 for p in probes if p.kind == "activation")
    sizes = [min(x.numel(), QUANTILE_SAMPLE) for x in tensors]
    parts = np.split(
        packed,
        np.cumsum([count * len(MOMENTS), grads, 2 * acts, *sizes]).tolist(),
    )
    moments = parts[0].reshape(count, len(MOMENTS))
    return Reductions(
        moments=moments,
        log_floor=parts[1],
        activation=parts[2].reshape(acts, 2),
        samples=parts[3 : 3 + count],
        counts=parts[-1].reshape(count + grads, bins),
        nonfinite=_nonfinite_counts(tensors, moments),
    )


def _moments(x: torch.Tensor, unit_dim: int, batch: bool) -> torch.Tensor:
    """sum, std * sqrt(n), min, max, l2, non-zero count and unit_std * sqrt(units) of one
    tensor, stacked (the host divides: on a small model every op saved counts).

    Plain sums rather than torch.std_mean / std(dim): those use Welford's update, 5-20x slower on
    CPU here. The units are first shifted by the first unit, so identical units give exactly 0
    (a mean of equal floats need not equal them, and symmetry is what unit_std is there to show).
    """
    lo, hi = torch.aminmax(x)
    total = x.sum()
    spread = torch.linalg.vector_norm(x - total / x.numel())
    l2 = torch.linalg.vector_norm(x)
    # count_nonzero is one op but slow on big CPU tensors (140 us at 40k); sign/abs/sum is 13 us
    nonzero = torch.count_nonzero(x) if x.numel() <= 8192 else x.sign().abs_().sum()
    if x.dim() > 1 and x.shape[unit_dim] > 1:
        if batch:  # an activation: its first examples estimate the mean over the batch
            x = x[:UNIT_STD_EXAMPLES]
        shifted = x - x.narrow(unit_dim, 0, 1)
        centered = shifted - shifted.mean(dim=unit_dim, keepdim=True)
        # square/sum/sqrt, not vector_norm(dim): 4x faster for a strided dim on CPU
        unit_spread = centered.square_().sum(dim=unit_dim).sqrt_().mean()
    else:
        unit_spread = torch.zeros_like(total)
    return torch.stack([total, spread, lo, hi, l2, nonzero.to(total.dtype), unit_spread])


def _least_finite(logs: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """Per tensor of ln|g|, the smallest finite value: the log of the least non-zero |g|.
    Zeros (-inf) are lifted to +inf first, so an all-zero gradient gets +inf."""
    if not logs:
        return like.new_zeros(0)
    return torch.stack([g.nan_to_num(neginf=float("inf")).amin() for g in logs])


def _histograms(
    tensors: list[torch.Tensor], lo: torch.Tensor, hi: torch.Tensor, bins: int
) -> torch.Tensor:
    """Counts (T, bins) of each tensor over its own [lo, hi], filled by one scatter.

    A value lands in column floor((x - lo) * bins / (hi - lo)), the maximum in the last one; a
    constant tensor fills column 0 (its scale is 1, not inf). A row without finite bounds (the
    tensor holds NaN/Inf) stays empty: its lo becomes NaN, so all its values turn NaN and go to a
    discarded column. The -inf of ln(0) lands in column 0 of a log row with finite bounds; the
    host takes the zeros out again.
    """
    width = hi - lo
    ok = torch.isfinite(lo) & torch.isfinite(hi)
    scale = torch.where(ok & (width > 0), bins / width, torch.ones_like(width))
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


def _activation_stats(acts: list[tuple[torch.Tensor, str]]) -> torch.Tensor:
    """(A, 2): saturated_fraction (tanh |a|>0.99, sigmoid a<0.01 or a>0.99) and dead_fraction
    (units that are <= 0 for every example and position: ReLU family only), each activation
    with its own function."""
    rows = []
    for a, activation in acts:
        zero = a.new_zeros(())
        if activation == "tanh":
            saturated = (a.abs() > 0.99).sum() / a.numel()
        elif activation == "sigmoid":
            saturated = ((a - 0.5).abs() > 0.49).sum() / a.numel()
        else:
            saturated = zero
        dead = zero
        if activation in RELU_FAMILY:
            # dead: no positive value anywhere; a sum of positive parts is faster than amax(dims)
            positive = a.clamp(min=0).sum(dim=[d for d in range(a.dim()) if d != 1])
            dead = (positive == 0).sum() / a.shape[1]
        rows.append(torch.stack([saturated, dead]))
    return torch.stack(rows) if rows else torch.zeros(0)


def _sample(x: torch.Tensor) -> torch.Tensor:
    """The entries of ``x`` its quantiles are read from (readout.sample_positions)."""
    flat = x.reshape(-1)
    if flat.numel() <= QUANTILE_SAMPLE:
        return flat
    return flat[_positions(flat.numel(), str(flat.device))]


@functools.lru_cache(maxsize=64)
def _positions(size: int, device: str) -> torch.Tensor:
    return torch.from_numpy(sample_positions(size)).to(device)


def _nonfinite_counts(tensors: list[torch.Tensor], moments: np.ndarray) -> np.ndarray:
    """(T, 3) NaN, Inf and zero counts of the tensors with a non-finite min or max (the others
    hold no NaN/Inf, and their zero count came with the moments; the row is NaN for them).
    Counted in a second, small transfer, needed only by a diverging run."""
    counts = np.full((len(tensors), 3), np.nan)
    counts[:, :2] = 0.0
    suspect = [i for i in range(len(tensors)) if not np.isfinite(moments[i, 2:4]).all()]
    if suspect:
        found = [
            torch.stack([x.isnan().sum(), x.isinf().sum(), (x == 0).sum()])
            for x in (tensors[i] for i in suspect)
        ]
        counts[suspect] = torch.stack(found).cpu().numpy()
    return counts
