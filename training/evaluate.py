"""Validation: loss, accuracy and (for two-class categorical data) ROC AUC, in batches.

The results stay on the device as 0-d tensors; the metric buffer copies them to the host with
the step's other metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F
from torch import nn

EVAL_BATCH = 1024


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    autocast: Callable[[], AbstractContextManager[object]],
    with_auc: bool,
) -> dict[str, torch.Tensor]:
    was_training = model.training
    model.eval()  # batch norm's running statistics, no dropout
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    scores = []
    for start in range(0, len(x), EVAL_BATCH):
        xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
        with autocast():
            logits = model(xb).float()
        loss_sum += F.cross_entropy(logits, yb, reduction="sum")
        correct += (logits.argmax(dim=1) == yb).sum()
        if with_auc:
            scores.append(logits[:, 1] - logits[:, 0])  # monotone in p(class 1)
    model.train(was_training)
    metrics = {"val_loss": loss_sum / len(x), "val_accuracy": correct / len(x)}
    if with_auc:
        metrics["val_auc"] = roc_auc(torch.cat(scores), y)
    return metrics


def roc_auc(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mann-Whitney AUC with tied scores given their average rank; NaN when one class is absent.

    Written without data-dependent shapes, so it runs on the device without a host sync.
    """
    n = len(scores)
    ordered, order = torch.sort(scores.float())
    new_value = torch.ones(n, dtype=torch.bool, device=scores.device)
    new_value[1:] = ordered[1:] != ordered[:-1]
    group = new_value.cumsum(0) - 1
    rank = torch.arange(1, n + 1, dtype=torch.float64, device=scores.device)
    first = torch.zeros_like(rank).scatter_reduce(0, group, rank, "amin", include_self=False)
    last = torch.zeros_like(rank).scatter_reduce(0, group, rank, "amax", include_self=False)
    average_rank = ((first + last) / 2)[group]
    positive = (labels[order] == 1).double()
    n_pos = positive.sum()
    n_neg = n - n_pos
    return ((average_rank * positive).sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
