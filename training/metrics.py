"""Per-step metrics kept on the device and copied to the host in batches, and the run summary.

Reading a loss with .item() every step would make the host wait for the device every step; the
buffer instead holds the step's tensors and copies all pending steps in one transfer (drain).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from training.model import ProbedLayer

TRACKED = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_auc")


@dataclass
class _Pending:
    step: int
    loss: torch.Tensor  # 0-d, the batch's cross-entropy
    logits: torch.Tensor  # (B, classes), detached
    targets: torch.Tensor  # (B,)
    grad_norms: list[torch.Tensor]  # 0-d norms whose L2 norm is the global gradient norm
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
        logits: torch.Tensor,
        targets: torch.Tensor,
        grad_norms: list[torch.Tensor],
        host: dict[str, float],
    ) -> None:
        """Keep the step's tensors as they are: accuracy and the global norm are reduced for all
        pending steps at once in drain (on a small model every extra op is ~2% of a step)."""
        self._pending.append(_Pending(step, loss, logits, targets, grad_norms, host))

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
        columns = [  # all float32: the loss and norms are computed in fp32 even under autocast
            torch.stack([p.loss for p in pending]),
            _accuracies(pending),
            _global_norms([p.grad_norms for p in pending]),
        ]
        extras = [value.reshape(()).float() for p in pending for value in p.extra.values()]
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


def _accuracies(pending: list[_Pending]) -> torch.Tensor:
    logits, targets = [p.logits for p in pending], [p.targets for p in pending]
    if all(t.shape == targets[0].shape for t in targets):  # one batch size: a few ops in all
        correct = torch.stack(logits).argmax(dim=-1) == torch.stack(targets)
        return correct.float().mean(dim=1)
    return torch.stack(
        [(lg.argmax(dim=-1) == t).float().mean() for lg, t in zip(logits, targets, strict=True)]
    )


def _global_norms(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    if all(len(row) == len(rows[0]) for row in rows):
        flat = torch.stack([norm for row in rows for norm in row])
        return torch.linalg.vector_norm(flat.view(len(rows), -1), dim=1)
    return torch.stack([torch.linalg.vector_norm(torch.stack(row)) for row in rows])


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


def grad_norms(params: Sequence[torch.Tensor], clip: float | None) -> list[torch.Tensor]:
    """Per-parameter gradient norms, taken before clipping (done here, in place); their L2 norm,
    the global gradient norm, is taken later in the metric buffer, for many steps at once.

    Written out rather than torch.nn.utils.clip_grad_norm_/get_total_norm: their wrappers cost
    ~80 us a call on CPU, 15% of a small model's whole step.
    """
    grads = [p.grad for p in params if p.grad is not None]
    norms = list(torch._foreach_norm(grads))
    if clip is None:
        return norms
    total = torch.linalg.vector_norm(torch.stack(norms))
    torch._foreach_mul_(grads, (clip / (total + 1e-6)).clamp_(max=1.0))
    return [total]


def update_ratios(layers: list[ProbedLayer], before: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """|W_after - W_before| / |W_before| per layer (snapshot steps only: it needs a copy)."""
    return {
        f"update_ratio/{layer.name}": torch.linalg.vector_norm(layer.weight.detach() - old)
        / torch.linalg.vector_norm(old).clamp_min(1e-12)
        for layer, old in zip(layers, before, strict=True)
    }
