"""Optimizers, learning-rate schedules and the L1/L2 loss penalties of a spec.

Decay and penalties touch only the layers' weights (linear, conv, embedding), never biases or
batch-norm scale and shift: shrinking those towards 0 regularizes nothing useful (as in nanoGPT).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from gradlab_contract.spec import OptimizerSpec, RegularizationSpec, ScheduleSpec
from torch import nn


def build_optimizer(
    model: nn.Module, weights: list[torch.Tensor], spec: OptimizerSpec
) -> torch.optim.Optimizer:
    """The optimizer of ``spec`` over ``model``'s parameters; weight_decay on ``weights`` only.

    rmsprop runs without momentum (Hinton's RMSProp, as the lecture defines it): spec.momentum
    defaults to 0.9 for momentum/nesterov, and carrying that default silently into rmsprop would
    turn it into a different optimizer. Set optimizer.name 'momentum' for the momentum variant.
    """
    weight_ids = {id(w) for w in weights}
    others = [p for p in model.parameters() if id(p) not in weight_ids]
    groups: list[dict[str, Any]] = [
        {"params": list(weights), "weight_decay": spec.weight_decay},
        {"params": others, "weight_decay": 0.0},
    ]
    if spec.weight_decay == 0.0:
        # One group when nothing decays: each group costs a pass of the optimizer's Python code.
        groups = [{"params": list(model.parameters()), "weight_decay": 0.0}]
    name, lr, eps = spec.name, spec.lr, spec.eps
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr)
    if name in ("momentum", "nesterov"):
        return torch.optim.SGD(groups, lr=lr, momentum=spec.momentum, nesterov=name == "nesterov")
    if name == "adagrad":
        return torch.optim.Adagrad(groups, lr=lr, eps=eps)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, eps=eps, momentum=0.0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=spec.betas, eps=eps)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=spec.betas, eps=eps)
    raise ValueError(f"optimizer.name: unknown optimizer {name!r}")


def lr_factor(schedule: ScheduleSpec, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the base lr for the update with 0-based index ``t``.

    Warm-up rises linearly from 1/warmup_steps to 1; the decay then counts from the end of the
    warm-up: 'step' multiplies by gamma every step_size updates, 'exponential' is the same decay
    made smooth (gamma ** (t / step_size)), 'cosine' falls to 0 over the remaining steps.
    """
    warmup = schedule.warmup_steps
    decay_steps = max(1, total_steps - warmup)

    def factor(t: int) -> float:
        if t < warmup:
            return (t + 1) / warmup
        after = t - warmup
        if schedule.name == "step":
            return schedule.gamma ** (after // schedule.step_size)
        if schedule.name == "exponential":
            return float(schedule.gamma ** (after / schedule.step_size))
        if schedule.name == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(after, decay_steps) / decay_steps))
        return 1.0

    return factor


def keeps_lr(schedule: ScheduleSpec) -> bool:
    """Whether lr_factor is 1 at every step: no warm-up, no decay."""
    return schedule.name == "constant" and schedule.warmup_steps == 0


def penalty(weights: list[torch.Tensor], spec: RegularizationSpec) -> torch.Tensor | None:
    """l1 * sum|w| + l2 * sum w^2 over the weights, or None when both are 0 (no extra work)."""
    if spec.l1 == 0.0 and spec.l2 == 0.0:
        return None
    terms = []
    if spec.l1 > 0.0:
        terms.append(spec.l1 * sum(w.abs().sum() for w in weights))
    if spec.l2 > 0.0:
        terms.append(spec.l2 * sum(w.square().sum() for w in weights))
    total = sum(terms)
    assert isinstance(total, torch.Tensor)
    return total
