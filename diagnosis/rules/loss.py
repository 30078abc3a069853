"""divergence, no_learning, overfitting and not_converged: what the loss curves say (§6, §7)."""

from __future__ import annotations

import math

import numpy as np

from diagnosis.findings import Finding, num, pct
from diagnosis.measure import (
    between,
    ending,
    first_nonfinite,
    initial,
    median,
    nonfinite_words,
    smooth3,
    trend,
)
from diagnosis.record import RunRecord
from diagnosis.rules._common import longer
from diagnosis.rules.learning_rate import safer_lr
from diagnosis.thresholds import Thresholds


def divergence(record: RunRecord, t: Thresholds) -> list[Finding]:
    steps, values = record.series("train_loss")
    if not len(values):
        return []
    stop, finite = first_nonfinite(steps, values), values[np.isfinite(values)]
    if not len(finite):
        return []
    start, last = float(finite[0]), float(finite[-1])  # the loss at initialization, and the end
    if stop is not None or record.status == "diverged":
        at = stop if stop is not None else record.final_step
        became = nonfinite_words(steps, values)
        title = f"Training diverged: the loss became {became} at step {at}"
        detail = (f"The training loss went from {num(start, 4)} to {num(last, 4)} (the last finite "
                  f"value) and then became {became} at step {at}; nothing after it can learn.")
    else:
        end = ending(steps, values)
        if not (end > t.divergence_rise * start and end > start + 1.0):
            return []
        at = int(steps[-1])
        title = f"Training diverged: the loss rose from {num(start, 4)} to {num(end, 4)}"
        detail = (f"The training loss ended at {num(end, 4)}, {num(end / start)}x where it began "
                  f"({num(start, 4)}): training made the model worse.")
    lower = safer_lr(record, t)
    return [Finding(
        code="divergence", severity="error", title=title,
        detail=detail + " A loss that explodes or turns NaN means the steps are too large (§7).",
        step=at,
        evidence={"initial_loss": start, "last_finite_loss": last, "nonfinite_step": stop,
                  "peak_grad_norm": _finite_max(record.series("grad_norm")[1])},
        suggestion=f"Lower the learning rate to {num(lower)} and clip the gradient norm.",
        remedy={"optimizer.lr": lower, "training.grad_clip": 1.0},
    )]


def no_learning(record: RunRecord, t: Thresholds) -> list[Finding]:
    classes = record.num_classes
    steps, values = record.series("train_loss")
    if classes is None or classes < 2 or record.final_step < t.no_learning_min_steps:
        return []
    chance, end = math.log(classes), ending(steps, values)
    acc_steps, accuracy = record.series("train_accuracy")
    acc = ending(acc_steps, accuracy)
    if not abs(end - chance) <= t.chance_tolerance * chance:
        return []
    if acc > t.chance_accuracy_factor / classes:
        return []  # near ln(C) but right more often than chance: slow, not stuck
    detail = (f"A model that gives every class the same probability has loss ln({classes}) = "
              f"{num(chance, 4)}; this one is at {num(end, 4)} after {record.final_step} steps")
    detail += (f" (training accuracy {pct(acc)}, chance {pct(1 / classes)})."
               if math.isfinite(acc) else ".")
    detail += (" It has learned nothing from its inputs. The other findings say why; the usual "
               "causes are zero or constant init, vanishing gradients, dead units, or a "
               "learning rate far off.")
    return [Finding(
        code="no_learning", severity="error",
        title=(f"The loss is stuck at chance: {num(end, 4)} ≈ ln({classes}) = {num(chance, 4)} "
               f"after {record.final_step} steps"),
        detail=detail, step=record.final_step,
        evidence={"loss": end, "chance_loss": chance, "classes": classes,
                  "train_accuracy": acc},
        suggestion="Fix the cause named by the other findings; the loss must leave ln(C) early.",
    )]


def overfitting(record: RunRecord, t: Thresholds) -> list[Finding]:
    steps, values = record.series("val_loss")
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    if len(values) < t.overfit_min_evals:
        return []
    smooth = smooth3(values)
    best = int(smooth.argmin())
    after = len(values) - 1 - best  # a rise must last: a quarter of the evaluations at least
    if after < max(3, len(values) // 4):
        return []
    low, end = float(smooth[best]), median(values[-max(3, after // 3):].tolist())
    rise = end - low
    if not (rise > t.overfit_rise and rise > t.overfit_rise_relative * low):
        return []
    train_steps, train = record.series("train_loss")
    best_step = int(steps[best])
    train_then = _around(train_steps, train, best_step)
    train_end = ending(train_steps, train)
    if not (train_end <= 1.05 * train_then and end - train_end > t.overfit_rise):
        return []
    return [Finding(
        code="overfitting", severity="warning",
        title=(f"Overfitting: validation loss rose from {num(low, 4)} (step {best_step}) to "
               f"{num(end, 4)} while training loss fell to {num(train_end, 4)}"),
        detail=(f"Since step {best_step} the validation loss rose by {num(rise)} "
                f"({pct(rise / low)}) while the training loss went from {num(train_then, 4)} to "
                f"{num(train_end, 4)}: the model memorizes its training examples instead of "
                f"learning what carries over; the gap is now {num(end - train_end)} (§6, §7)."),
        step=int(steps[-1]),
        evidence={"best_val_loss": low, "best_step": best_step, "val_loss": end,
                  "train_loss_at_best": train_then, "train_loss": train_end,
                  "gap": end - train_end},
        suggestion=("More data or augmentation, L2 weight decay or dropout (§5, §6); or stop at "
                    f"step {best_step}, where validation loss was lowest."),
        remedy={"model.dropout": 0.3, "regularization.l2": 1e-3},
    )]


def not_converged(record: RunRecord, t: Thresholds) -> list[Finding]:
    steps, values = record.series("train_loss")
    if record.status != "succeeded" or len(values) < t.not_converged_min_steps:
        return []
    share, start, end, slope = _remaining_share(steps, values)
    if not share > t.not_converged_share:
        return []
    val_steps, val = record.series("val_loss")
    val_share = _remaining_share(val_steps, val)[0] if len(val) >= 6 else math.nan
    if math.isfinite(val_share) and val_share <= t.not_converged_val_share:
        return []  # only the training loss still falls: memorization, not convergence
    gn_steps, grad_norm = record.series("grad_norm")
    grad_change = ending(gn_steps, grad_norm) / initial(grad_norm) if len(grad_norm) else math.nan
    spec = record.spec
    quarter = round(0.25 * (steps[-1] - steps[0]))
    detail = (f"In the second half of the run the training loss was still falling, by "
              f"{num(-slope)} per step: another {quarter} steps at that pace would take off a "
              f"further {pct(share)} of what it has lost so far ({num(start, 4)} to "
              f"{num(end, 4)}).")
    if math.isfinite(grad_change):
        detail += (f" The gradient norm is still {pct(grad_change)} of its initial value; "
                   "gradients become small as a run converges (§7).")
    return [Finding(
        code="not_converged", severity="warning",
        title=f"Not converged: the loss was still falling when training stopped at step "
              f"{int(steps[-1])}",
        detail=detail, step=int(steps[-1]),
        evidence={"remaining_share": share, "val_remaining_share": val_share,
                  "initial_loss": start, "final_loss": end, "slope_per_step": slope,
                  "grad_norm_change": grad_change},
        suggestion="Train longer (or with a larger learning rate and a decaying schedule).",
        remedy=longer(spec, 4 if share > 0.2 else 2),
    )]


def _remaining_share(steps: np.ndarray, values: np.ndarray) -> tuple[float, float, float, float]:
    """(share, start, fitted end, slope): the fall a line fitted to the second half of the run
    predicts for another quarter of it, as a share of the fall so far."""
    middle = (steps[0] + steps[-1]) / 2
    fitted = trend(steps, values, since=middle)
    start = initial(values)
    if fitted is None:
        return math.nan, start, math.nan, math.nan
    slope, end = fitted
    learned = start - end
    projected = -slope * 0.25 * (steps[-1] - steps[0])
    share = projected / learned if learned > 0 else math.nan
    return share, start, end, slope


def _finite_max(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.max()) if len(finite) else None


def _around(steps: np.ndarray, values: np.ndarray, step: int) -> float:
    """The series' median over the 5% of the run up to `step`, or its value nearest to it."""
    if not len(steps):
        return math.nan
    near = between(steps, values, step - max(1.0, 0.05 * float(steps[-1])), step)
    if len(near):
        return median(near.tolist())
    return float(values[int(np.abs(steps - step).argmin())])
