"""Per-step metrics kept on the device and copied to the host in batches, and the run summary.

Reading a loss with .item() every step would make the host wait for the device every step; the
buffer instead holds the step's tensors and reduces all pending steps at once (drain), with one
copy to the host. On a small model every op counts (~3-5 us each on a CPU, against a ~1 ms
step), so a step only appends references: its accuracy is computed in drain, a handful of ops
for all pending steps together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

TRACKED = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_auc")
# Metrics wait on the device at most this many steps or seconds before they are copied over.
FLUSH_STEPS = 64
FLUSH_SECONDS = 2.0


@dataclass
class _Pending:
    step: int
    loss: torch.Tensor  # 0-d, the batch's cross-entropy
    logits: torch.Tensor  # (B, classes), detached
    targets: torch.Tensor  # (B,)
    norm: torch.Tensor  # 0-d, the global gradient norm (before clipping)
    host: dict[str, float]  # values the host already has (lr, step_time)
    extra: list[tuple[list[str], torch.Tensor]] = field(default_factory=list)  # names, values


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
        gradient_norm: torch.Tensor,
        host: dict[str, float],
    ) -> None:
        self._pending.append(_Pending(step, loss, logits, targets, gradient_norm, host))

    def add_extra(self, step: int, names: list[str], values: torch.Tensor) -> None:
        """More metrics of the latest step (validation, update ratios), one value per name."""
        latest = self._pending[-1]
        assert latest.step == step, "extras belong to the step just added"
        latest.extra.append((names, values))

    def drain(self) -> list[tuple[int, dict[str, float]]]:
        """All pending steps as host numbers, in step order, with one device-to-host copy."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        n = len(pending)
        columns = [  # float32: the loss and norms are computed in fp32 even under autocast
            torch.stack([p.loss for p in pending]),
            _accuracies(pending),
            torch.stack([p.norm for p in pending]),
            *(values.reshape(-1).float() for p in pending for _, values in p.extra),
        ]
        values = torch.cat(columns).cpu().tolist()
        extra_values = iter(values[3 * n :])
        drained = []
        for i, p in enumerate(pending):
            metrics = {
                "train_loss": values[i],
                "train_accuracy": values[n + i],
                "grad_norm": values[2 * n + i],
                **p.host,
            }
            for names, _ in p.extra:
                metrics.update({name: next(extra_values) for name in names})
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


def update_ratios(weights: list[torch.Tensor], before: list[torch.Tensor]) -> torch.Tensor:
    """|W_after - W_before| / |W_before| per layer, in one vector (snapshot steps only: it
    needs a copy of the weights from before the update)."""
    moved = torch._foreach_norm(torch._foreach_sub([w.detach() for w in weights], before))
    size = torch.stack(torch._foreach_norm(before)).clamp_min_(1e-12)
    return torch.stack(moved).div_(size)
