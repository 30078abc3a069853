"""Probes: the distribution of every layer's gradient, weight and activation at a snapshot step.

Cost matters more than elegance here (bench/overhead.py measures it), so a snapshot
- hooks activations only on snapshot steps (ActivationRecorder), never on other steps;
- reduces the tensors where they are, with a number of operations that does not grow with the
  number of elements: on an accelerator with torch and one copy to the host for all tensors
  (on_device), on the CPU with NumPy over zero-copy views (on_host: fewer, cheaper calls);
- reads the reductions into Snapshots on the host (readout), where the quantiles of a capped
  sample are sorted.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from gradlab_contract.models import Snapshot

from training.probes.on_device import reduce_on_device
from training.probes.on_host import reduce_on_host
from training.probes.readout import QUANTILE_SAMPLE, Reductions, read_snapshots
from training.probes.tensors import UNIT_STD_EXAMPLES, ActivationRecorder, ProbeTensor, collect

__all__ = [
    "QUANTILE_SAMPLE",
    "UNIT_STD_EXAMPLES",
    "ActivationRecorder",
    "ProbeTensor",
    "collect",
    "reduce",
    "summarize",
]


def summarize(
    step: int, probes: Sequence[ProbeTensor], *, bins: int, activation: str
) -> list[Snapshot]:
    """One Snapshot per probed tensor."""
    if not probes:
        return []
    reduced = reduce(probes, bins=bins, activation=activation)
    return read_snapshots(step, [p.info() for p in probes], reduced)


def reduce(
    probes: Sequence[ProbeTensor], *, bins: int, activation: str, on_host: bool | None = None
) -> Reductions:
    """The reductions of ``probes`` by on_host (the default for float32 CPU tensors: NumPy) or
    on_device (torch, on the tensors' device)."""
    if on_host is None:
        on_host = _on_host(probes)
    stage = reduce_on_host if on_host else reduce_on_device
    return stage(probes, bins=bins, activation=activation)


def _on_host(probes: Sequence[ProbeTensor]) -> bool:
    return all(p.tensor.device.type == "cpu" and p.tensor.dtype == torch.float32 for p in probes)
