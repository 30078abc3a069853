"""The global gradient norm: taken at once (clipping needs it), or later from copies in a ring.

A step's gradient norm is one _foreach_norm and a reduction, ~25-40 us on a CPU: 3-4% of the
step of a small model. GradientRing makes it ~10 us: the step copies its gradients into a row of
one preallocated buffer (one _foreach_copy_), and drain takes the norms of every pending row in
one op. Copies rather than the gradient tensors themselves: holding those alive makes every
backward allocate fresh, cache-cold memory, which slowed the whole step by more than the norm.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

# A ring holds at most this many elements (64 MiB of float32); a bigger model takes its norm
# every step, where one _foreach_norm is a small part of its step anyway.
RING_ELEMENTS = 16 * 2**20


class GradientRing:
    """Copies of the gradients of up to ``capacity`` steps, one row per step."""

    def __init__(self, params: Sequence[torch.Tensor], capacity: int) -> None:
        sizes = [p.numel() for p in params]
        first = params[0]
        self._buffer = torch.empty(capacity, sum(sizes), dtype=first.dtype, device=first.device)
        self._rows = [
            [part.view_as(p) for part, p in zip(row.split(sizes), params, strict=True)]
            for row in self._buffer
        ]
        self._used = 0

    @classmethod
    def for_params(cls, params: Sequence[torch.Tensor], capacity: int) -> GradientRing | None:
        """A ring for ``params``, or None when it would hold more than RING_ELEMENTS or the
        parameters do not share one dtype and device."""
        if not params or sum(p.numel() for p in params) * capacity > RING_ELEMENTS:
            return None
        if len({(p.dtype, p.device) for p in params}) != 1:
            return None
        return cls(params, capacity)

    def push(self, grads: Sequence[torch.Tensor]) -> bool:
        """Copy one step's gradients (of every parameter, in order) into the next row; False
        when the ring is full or a parameter has no gradient (the caller takes the norm)."""
        if self._used == len(self._rows) or len(grads) != len(self._rows[0]):
            return False
        torch._foreach_copy_(self._rows[self._used], list(grads))
        self._used += 1
        return True

    def norms(self) -> torch.Tensor:
        """The global norm of each row pushed since the last call, in push order; empties the
        ring."""
        used, self._used = self._used, 0
        return torch.linalg.vector_norm(self._buffer[:used], dim=1)


def gradient_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """The global L2 norm of ``grads``, 0-d. Written out rather than
    torch.nn.utils.get_total_norm: its wrapper costs ~80 us a call on CPU."""
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(grads))))


def clip_gradients(grads: Sequence[torch.Tensor], clip: float) -> torch.Tensor:
    """Scale ``grads`` in place so that their global norm is at most ``clip``; return the norm
    they had (the metric reports the gradient before clipping)."""
    total = gradient_norm(grads)
    torch._foreach_mul_(list(grads), (clip / (total + 1e-6)).clamp_(max=1.0))
    return total
