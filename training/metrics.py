"""Per-step metrics kept on the device and copied to the host in batches, and the run summary.

Reading a loss with .item() every step would make the host wait for the device every step; the
buffer instead holds the step's tensors and copies all pending steps in one transfer (drain).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

TRACKED = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_auc")


@dataclass
class _Pending:
    step: int
    loss: torch.Tensor  # 0-d, the batch's cross-entropy
    correct: torch.Tensor  # (B,) bool: prediction == label
    grad_norm: torch.Tensor  # 0-d
    host: dict[str, float]  # values the host already has (lr, step_time)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)  # 0-d: eval, update ratios


class MetricBuffer:
    """Pending metrics of steps not yet reported."""

    def __init__(self) -> None:
        self._pending: list[_Pending] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        step: int,
        *,
        loss: torch.Tensor,
        correct: torch.Tensor,
        grad_norm: torch.Tensor,
        host: dict[str, float],
    ) -> None:
        self._pending.append(_Pending(step, loss, correct, grad_norm, host))

    def add_extra(self, step: int, values: dict[str, torch.Tensor]) -> None:
        """More metrics of the latest step (validation, update ratios)."""
        latest = self._pending[-1]
        assert latest.step == step, "extras belong to the step just added"
        latest.extra.update(values)

    def drain(self) -> list[tuple[int, dict[str, float]]]:
        """All pending steps as host numbers, in step order, with one device-to-host copy."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        columns = [
            torch.stack([p.loss.float() for p in pending]),
            _accuracies([p.correct for p in pending]),
            torch.stack([p.grad_norm.float() for p in pending]),
        ]
        extras = [value.float().reshape(()) for p in pending for value in p.extra.values()]
        if extras:
            columns.append(torch.stack(extras))
        values = torch.cat(columns).cpu().tolist()
        n = len(pending)
        extra_values = iter(values[3 * n :])
        drained = []
        for i, p in enumerate(pending):
            metrics = {
                "train_loss": values[i],
                "train_accuracy": values[n + i],
                "grad_norm": values[2 * n + i],
                **p.host,
            }
            metrics.update({name: next(extra_values) for name in p.extra})
            drained.append((p.step, metrics))
        return drained


def _accuracies(correct: list[torch.Tensor]) -> torch.Tensor:
    if all(c.shape == correct[0].shape for c in correct):  # batches have one size: 3 ops in all
        return torch.stack(correct).float().mean(dim=1)
    return torch.stack([c.float().mean() for c in correct])


def first_nonfinite_loss(drained: list[tuple[int, dict[str, float]]]) -> int | None:
    for step, metrics in drained:
        if not math.isfinite(metrics["train_loss"]):
            return step
    return None


class SummaryTracker:
    """final_<metric> (the last value) and best_<metric> (lowest loss, highest accuracy or AUC).

    The summary holds finite numbers only, so it is always valid JSON: a metric whose last value
    is NaN/Inf (a diverged run) has no final_*; its best_* counts finite values only.
    """

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def update(self, metrics: dict[str, float]) -> None:
        for name in TRACKED:
            if name not in metrics:
                continue
            value = metrics[name]
            if not math.isfinite(value):
                self.values.pop(f"final_{name}", None)
                continue
            self.values[f"final_{name}"] = value
            best = self.values.get(f"best_{name}")
            pick = min if name.endswith("loss") else max
            self.values[f"best_{name}"] = value if best is None else pick(best, value)

    def state_dict(self) -> dict[str, float]:
        return dict(self.values)

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.values = {str(k): float(v) for k, v in state.items()}
