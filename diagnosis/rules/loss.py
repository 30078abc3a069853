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
from diagnosis.remedy import remedy_for
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
        over = (values > t.divergence_rise * start) & (values > start + 1.0)
        stop = int(steps[over][0]) if over.any() else at
        title = f"Training diverged: the loss rose from {num(start, 4)} to {num(end, 4)}"
        detail = (f"The training loss ended at {num(end, 4)}, {num(end / start)}x where it began "
                  f"({num(start, 4)}): training made the model worse.")
    remedy = remedy_for("divergence", record.spec, lr=safer_lr(record, t))
    assert remedy is not None  # the table always has one for divergence
    return [Finding(
        code="divergence", severity="error", title=title,
        detail=detail + " A loss that explodes or turns NaN means the steps are too large (§7).",
        step=at,
        evidence={"initial_loss": start, "last_finite_loss": last,
                  "nonfinite_step": first_nonfinite(steps, values),
                  "peak_grad_norm": _finite_max(record.series("grad_norm")[1])},
        suggestion=remedy.words, remedy=remedy.changes, onset_step=stop,
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
        onset_step=_stuck_since(steps, values, chance, t),
    )]


def _stuck_since(steps: np.ndarray, values: np.ndarray, chance: float, t: Thresholds) -> int:
    """The first step of the stretch, up to the end, where the loss stays at chance."""
    away = np.abs(smooth3(values) - chance) > t.chance_tolerance * chance
    last_away = int(np.nonzero(away)[0][-1]) if away.any() else -1
    return int(steps[min(last_away + 1, len(steps) - 1)])


def overfitting(record: RunRecord, t: Thresholds) -> list[Finding]:
    """Validation loss rising from its lowest point by a clear margin while the training loss
    keeps falling. Works from overfit_min_evals evaluations: the lowest (3-point median) value,
    and at least two evaluations after it, whose median ends clearly above it."""
    found = validation_rise(record, t)
    if found is None:
        return []
    steps, best, low, end = found
    rise = end - low
    train_steps, train = record.series("train_loss")
    best_step = int(steps[best])
    train_then = _around(train_steps, train, best_step)
    train_end = ending(train_steps, train)
    if not (train_end <= 1.05 * train_then and end - train_end > t.overfit_rise):
        return []
    remedy = remedy_for("overfitting", record.spec, best_step=best_step)
    assert remedy is not None  # the table always has one for overfitting
    return [Finding(
        code="overfitting", severity="warning",
        title=(f"Overfitting: validation loss rose from {num(low, 4)} (step {best_step}) to "
               f"{num(end, 4)} while training loss fell to {num(train_end, 4)}"),
        detail=(f"Since step {best_step} the validation loss rose by {num(rise)} "
                f"({pct(rise / low)}) while the training loss went from {num(train_then, 4)} to "
                f"{num(train_end, 4)}: the model memorizes its training examples instead of "
                f"learning what carries over; the gap is now {num(end - train_end)} (§6, §7). "
                f"Training longer makes it worse; the best model was the one at step "
                f"{best_step}."),
        step=int(steps[-1]),
        evidence={"best_val_loss": low, "best_step": best_step, "val_loss": end,
                  "train_loss_at_best": train_then, "train_loss": train_end,
                  "gap": end - train_end},
        suggestion=remedy.words, remedy=remedy.changes,
        onset_step=int(steps[best + 1]),  # the rise begins after the best evaluation
    )]


def validation_rise(record: RunRecord, t: Thresholds
                    ) -> tuple[np.ndarray, int, float, float] | None:
    """(eval steps, index of the best, best val loss, val loss at the end) when the validation
    loss ended clearly above its lowest point; None otherwise.

    The end is a line fitted through the evaluations after the best one, read at the last
    step, so one noisy evaluation neither makes nor hides a rise; the median of those
    evaluations must also sit above the best (the rise lasted, it is not one late spike)."""
    steps, values = _finite_series(record, "val_loss")
    if len(values) < t.overfit_min_evals:
        return None
    best = int(values.argmin())
    after = values[best + 1:]
    if len(after) < max(2, len(values) // 4):  # a rise must last
        return None
    low = float(values[best])
    fitted = trend(steps[best:], values[best:], since=float(steps[best]))
    end = fitted[1] if fitted is not None else float(after[-1])
    rise = end - low
    if not (rise > t.overfit_rise and rise > t.overfit_rise_relative * low):
        return None
    if not median(after.tolist()) - low > t.overfit_rise / 2:
        return None
    return steps, best, low, end


def _finite_series(record: RunRecord, name: str) -> tuple[np.ndarray, np.ndarray]:
    steps, values = record.series(name)
    keep = np.isfinite(values)
    return steps[keep], values[keep]


def validation_improving(record: RunRecord, t: Thresholds) -> bool | None:
    """Whether the validation loss was still improving at the end: its lowest (3-point median)
    value is among the last two evaluations. None with fewer than overfit_min_evals of them."""
    values = _finite_series(record, "val_loss")[1]
    if len(values) < t.overfit_min_evals:
        return None
    return int(smooth3(values).argmin()) >= len(values) - 2


def not_converged(record: RunRecord, t: Thresholds) -> list[Finding]:
    steps, values = record.series("train_loss")
    if record.status != "succeeded" or len(values) < t.not_converged_min_steps:
        return []
    share, start, end, slope = _remaining_share(steps, values)
    if not share > t.not_converged_share:
        return []
    if validation_rise(record, t) is not None or validation_improving(record, t) is False:
        return []  # only the training loss still falls: memorization, not convergence
    val_steps, val = record.series("val_loss")
    val_share = _remaining_share(val_steps, val)[0] if len(val) >= 6 else math.nan
    if math.isfinite(val_share) and val_share <= t.not_converged_val_share:
        return []
    gn_steps, grad_norm = record.series("grad_norm")
    grad_change = ending(gn_steps, grad_norm) / initial(grad_norm) if len(grad_norm) else math.nan
    remedy = remedy_for("not_converged", record.spec, longer=longer(record.spec,
                                                                     4 if share > 0.2 else 2))
    assert remedy is not None  # the table always has one when it is given the length
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
        suggestion=remedy.words, remedy=remedy.changes, onset_step=int(steps[-1]),
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
