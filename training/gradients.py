"""The gradients of a run in one flat buffer, and their global norm.

Every parameter's .grad is a view into one buffer, set up once. Backward then accumulates into
those views (autograd adds in place into a .grad that exists), so zeroing the gradients is one
op, the global norm one op and clipping one op, where the usual per-parameter code takes a
Python loop (zero_grad(set_to_none=True)) and a _foreach_norm plus a reduction: ~30-50 us a
step on a CPU, 3-4% of the step of a small model (bench/overhead.py).

Every parameter of the models built here gets a gradient at every step, so a zero in place of
None changes no optimizer's update.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class FlatGradients:
    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        sizes = [p.numel() for p in params]
        first = params[0]
        self.buffer = torch.zeros(sum(sizes), dtype=first.dtype, device=first.device)
        self._params = list(params)
        for param, part in zip(self._params, self.buffer.split(sizes), strict=True):
            param.grad = part.view_as(param)

    @classmethod
    def for_params(cls, params: Sequence[torch.Tensor]) -> FlatGradients | None:
        """The buffer for ``params``, or None when they do not share one dtype and device."""
        if not params or len({(p.dtype, p.device) for p in params}) != 1:
            return None
        return cls(params)

    def zero(self) -> None:
        self.buffer.zero_()

    def norm(self) -> torch.Tensor:
        """The global L2 norm of the gradients, 0-d."""
        return torch.linalg.vector_norm(self.buffer)

    def clip(self, max_norm: float) -> torch.Tensor:
        """Scale the gradients so that their global norm is at most ``max_norm``; return the
        norm they had (the metric reports the gradient before clipping)."""
        total = self.norm()
        self.buffer.mul_((max_norm / (total + 1e-6)).clamp_(max=1.0))
        return total

    def attached(self) -> bool:
        """Whether every parameter's .grad is still its view into the buffer."""
        start, end = self.buffer.data_ptr(), self.buffer.data_ptr() + self.buffer.nbytes
        return all(
            p.grad is not None and start <= p.grad.data_ptr() < end for p in self._params
        )


def gradient_norm(grads: Sequence[torch.Tensor]) -> torch.Tensor:
    """The global L2 norm of ``grads``, 0-d, for parameters without a flat buffer. Written out
    rather than torch.nn.utils.get_total_norm: its wrapper costs ~80 us a call on CPU."""
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(grads))))


def clip_gradients(grads: Sequence[torch.Tensor], clip: float) -> torch.Tensor:
    """clip for parameters without a flat buffer: scale ``grads`` in place; return their norm
    before clipping."""
    total = gradient_norm(grads)
    torch._foreach_mul_(list(grads), (clip / (total + 1e-6)).clamp_(max=1.0))
    return total
