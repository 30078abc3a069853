"""The training core's callbacks and result.

The records it reports (Snapshot, Histogram, Layer) are the contract's (gradlab_contract.models):
Python numbers, no tensors, so that the worker stores them and the service and the diagnosis
read them without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from training.kept import TrainedModel

from gradlab_contract.models import Layer, Snapshot

RunStatus = Literal["succeeded", "diverged", "stopped"]


@dataclass
class TrainingCallbacks:
    """How the core reports; every callback is optional. None of them may raise to stop training:
    stopping is asked for through should_stop, which is checked every step.

    All are called on the thread that called train(), in this order:
    - on_layers once, before the first step (again on a resumed run);
    - per step s, after update s: on_progress(s, total), then should_stop();
    - on_metrics(s, ...) for every step, in step order, but in batches: metrics wait on the
      device until an evaluation, snapshot or checkpoint step, 64 steps or 2 seconds, so they
      arrive up to that much after on_progress(s). Every step has train_loss, train_accuracy,
      grad_norm (before clipping), lr and step_time (host seconds; on CUDA the host runs ahead,
      so it is right on average, not per step); evaluation steps (every eval_every and the last)
      add val_loss, val_accuracy (and val_auc for two-class categorical data); snapshot steps add
      update_ratio/<layer>. At the step where a run diverges, train_loss (and others) are NaN/Inf.
    - on_snapshots(s, ...) right after the metrics of step s, at steps 1, every snapshot_every
      and the last: the weights and gradients update s started from, its forward's activations;
    - on_checkpoint(s) after the file is complete, and only after on_metrics for every step <= s.
    """

    on_layers: Callable[[list[Layer]], None] | None = None
    # step -> {metric name: value}; per-layer update ratios are named "update_ratio/<layer>".
    on_metrics: Callable[[int, dict[str, float]], None] | None = None
    on_snapshots: Callable[[int, list[Snapshot]], None] | None = None
    on_progress: Callable[[int, int], None] | None = None  # (step, total_steps)
    # Called after a checkpoint for `step` has been written completely to disk.
    on_checkpoint: Callable[[int], None] | None = None
    # Once, after the last step of a run that succeeded: the model to keep (training/kept.py).
    on_trained: Callable[[TrainedModel], None] | None = None
    # Called with the step whose evaluation is the best so far of training.early_stopping's
    # metric, right after that step's on_metrics: the model holds that step's weights.
    on_best: Callable[[int], None] | None = None
    should_stop: Callable[[], bool] | None = None


@dataclass(frozen=True)
class RunResult:
    status: RunStatus
    steps_done: int
    total_steps: int
    device: str
    summary: dict[str, float] = field(default_factory=dict)  # final_* and best_* metrics
    reason: str | None = None  # e.g. "non-finite loss at step 12"
    stopped_early: bool = False  # succeeded before its last step: training.early_stopping
    best_step: int | None = None  # the best evaluation of training.early_stopping's metric
