"""lr_too_high and lr_too_low (§7): the learning rate read from the update/weight ratio
|dW|/|W| (healthy: around 1e-3) and from the loss curve (a loss that explodes or turns NaN).

Ratios of exactly 0 are left out: a layer that did not move at all has no gradient (dead,
symmetric or vanishing), which other rules name; it says nothing about the step size. Where the
weights are zero or one constant by construction (zeros or constant init) no ratio is read at
all: an update of a weight that was 0 is huge relative to it whatever the learning rate (a
zero-init sigmoid net would read "lr too high"), and identical units move as one.
"""

from __future__ import annotations

import math

import numpy as np

from diagnosis.findings import Finding, num, pct
from diagnosis.measure import ending, first_nonfinite, initial, median, nonfinite_words
from diagnosis.record import RunRecord
from diagnosis.remedy import remedy_for
from diagnosis.rules._common import lr_words, scaled_lr, weights_by_construction
from diagnosis.thresholds import Thresholds


def update_ratios(record: RunRecord, steps: list[int] | None = None) -> dict[str, list[float]]:
    """Per layer, its positive finite update ratios (at `steps`, or all), in step order."""
    wanted = None if steps is None else set(steps)
    ratios: dict[str, list[float]] = {}
    if weights_by_construction(record.spec):
        return ratios
    for layer, name in record.update_ratio_names().items():
        series_steps, values = record.series(name)
        kept = [float(v) for s, v in zip(series_steps, values, strict=True)
                if (wanted is None or s in wanted) and math.isfinite(v) and v > 0]
        if kept:
            ratios[layer] = kept
    return ratios


def loss_spike(record: RunRecord, t: Thresholds) -> tuple[int, float, float] | None:
    """(step, loss, first loss) of the highest finite training loss, if it exceeds loss_spike
    times the loss at initialization."""
    steps, values = record.series("train_loss")
    if len(values) < 2 or not math.isfinite(values[0]) or values[0] <= 0:
        return None
    later = np.where(np.isfinite(values[1:]), values[1:], -np.inf)
    at = int(later.argmax())
    if not later[at] > t.loss_spike * values[0]:
        return None
    return int(steps[1 + at]), float(later[at]), float(values[0])


def lr_evidence(record: RunRecord, t: Thresholds, *, first_step: bool = False) -> str | None:
    """Why the learning rate looks too high, in words; None when nothing says so. With
    `first_step`, a first update far above 1e-3 of the weights counts too: it is what kills
    ReLUs, though an adaptive optimizer's later steps may be modest."""
    steps, values = record.series("train_loss")
    stop = first_nonfinite(steps, values)
    if stop is not None:
        return f"the training loss became {nonfinite_words(steps, values)} at step {stop}"
    spike = loss_spike(record, t)
    if spike is not None:
        at, peak, first = spike
        return f"the training loss jumped from {num(first, 4)} to {num(peak, 4)} at step {at}"
    high = _high_ratio(record, t)
    if high is not None:
        layer, ratio = high
        return (f"each update moves {layer}'s weights by {num(ratio)} of their norm (median), "
                "where about 1e-3 is healthy")
    update = _first_update(record) if first_step else None
    if update is not None and update[2] > t.lr_high_update_ratio:
        step, layer, ratio = update
        return f"the update of step {step} moved {layer}'s weights by {pct(ratio)} of their norm"
    return None


def safer_lr(record: RunRecord, t: Thresholds) -> float:
    """The learning rate to propose when it is too high: the first update scaled to move the
    weights by about lr_target_update_ratio of their norm (update ratios grow with the lr),
    in powers of ten, at least tenfold lower; tenfold lower when no ratio was recorded."""
    update = _first_update(record)
    factor = 0.1
    if update is not None:
        exponent = round(math.log10(t.lr_target_update_ratio / update[2]))
        factor = 10.0 ** min(-1, max(-4, exponent))
    return scaled_lr(record.spec, factor)


def _first_update(record: RunRecord) -> tuple[int, str, float] | None:
    """(step, layer, ratio) of the largest update ratio at the first snapshot step."""
    steps = record.steps("gradient")
    if not steps:
        return None
    ratios = {layer: r[0] for layer, r in update_ratios(record, steps[:1]).items()}
    layer = max(ratios, key=lambda name: ratios[name], default=None)
    return None if layer is None else (steps[0], layer, ratios[layer])


def _high_ratio(record: RunRecord, t: Thresholds) -> tuple[str, float] | None:
    # Three snapshots at least, and not the first: Adam's first step is lr / rms(W), which for
    # small weights says little about the steps that follow.
    steps = record.recent_steps("gradient", t.window)[1:] or None
    typical = {layer: median(r) for layer, r in update_ratios(record, steps).items()
               if len(r) >= 3}
    worst = max(typical, key=lambda layer: typical[layer], default=None)
    if worst is None or not typical[worst] > t.lr_high_update_ratio:
        return None
    return worst, typical[worst]


def lr_too_high(record: RunRecord, t: Thresholds) -> list[Finding]:
    cause = lr_evidence(record, t)
    if cause is None:
        return []
    spec, lower = record.spec, safer_lr(record, t)
    steps, values = record.series("train_loss")
    broke = first_nonfinite(steps, values) is not None or record.status == "diverged"
    remedy = remedy_for("lr_too_high", spec, lr=lower)
    assert remedy is not None  # the table always has one for lr_too_high
    return [Finding(
        code="lr_too_high", severity="error" if broke else "warning",
        title=f"The learning rate is too high ({lr_words(spec)}): {cause}",
        detail=(f"{cause[0].upper()}{cause[1:]}. A loss that explodes or becomes NaN, or updates "
                "far above 1e-3 of the weights, mean the steps overshoot: the optimizer jumps "
                "across the valley instead of descending into it (§7)."),
        step=_cause_step(record, t),
        evidence={"optimizer": spec.optimizer.name, "lr": spec.optimizer.lr, "cause": cause,
                  "update_ratio": {k: median(v) for k, v in update_ratios(record).items()}},
        suggestion=remedy.words, remedy=remedy.changes, onset_step=_high_onset(record, t),
    )]


def _cause_step(record: RunRecord, t: Thresholds) -> int | None:
    steps, values = record.series("train_loss")
    stop = first_nonfinite(steps, values)
    spike = loss_spike(record, t)
    return stop if stop is not None else (spike[0] if spike else record.final_step or None)


def _high_onset(record: RunRecord, t: Thresholds) -> int | None:
    """The first step with a sign of too high a learning rate: an update far above 1e-3 of the
    weights (after the first snapshot), a loss spike, or a non-finite loss."""
    signs = []
    later = record.steps("gradient")[1:]
    for layer_ratios in _ratios_by_step(record, later).values():
        signs += [step for step, ratio in layer_ratios if ratio > t.lr_high_update_ratio]
    steps, values = record.series("train_loss")
    if len(values) and math.isfinite(values[0]) and values[0] > 0:
        over = ~np.isfinite(values) | (values > t.loss_spike * values[0])
        if over[1:].any():
            signs.append(int(steps[1:][over[1:]][0]))
    return min(signs, default=_cause_step(record, t))


def _ratios_by_step(record: RunRecord, steps: list[int]) -> dict[str, list[tuple[int, float]]]:
    """Per layer, its (step, update ratio) at `steps`, positive and finite only."""
    if weights_by_construction(record.spec):
        return {}
    wanted, found = set(steps), {}
    for layer, name in record.update_ratio_names().items():
        series_steps, values = record.series(name)
        found[layer] = [(int(s), float(v)) for s, v in zip(series_steps, values, strict=True)
                        if s in wanted and math.isfinite(v) and v > 0]
    return found


def lr_too_low(record: RunRecord, t: Thresholds) -> list[Finding]:
    ratios = update_ratios(record, record.recent_steps("gradient", t.window))
    typical = {layer: median(r) for layer, r in ratios.items()}
    seen = max((len(r) for r in ratios.values()), default=0)
    if seen < 3 or record.final_step < t.no_learning_min_steps:
        return []
    largest = max(typical, key=lambda layer: typical[layer])
    top = typical[largest]
    steps, values = record.series("train_loss")
    start, end = initial(values), ending(steps, values)
    drop = (start - end) / start if start > 0 else math.nan
    if not (top < t.lr_low_update_ratio and drop < t.lr_low_loss_drop):
        return []
    spec = record.spec
    factor = min(1000.0, 10.0 ** math.ceil(math.log10(t.healthy_update_ratio / top)))
    remedy = remedy_for("lr_too_low", spec, lr=scaled_lr(spec, factor))
    assert remedy is not None  # the table always has one when it is given the lr
    low = [step for step in record.steps("gradient")
           if 0 < max((r for _, r in _step_ratios(record, step)), default=0.0)
           < t.lr_low_update_ratio]
    return [Finding(
        code="lr_too_low", severity="warning",
        title=(f"The learning rate is too low ({lr_words(spec)}): updates move the weights by at "
               f"most {num(top)} of their norm"),
        detail=(f"The largest median update/weight ratio is {largest}'s {num(top)}, where about "
                f"1e-3 is healthy (§7), and the training loss went only from {num(start, 4)} to "
                f"{num(end, 4)} ({pct(drop)}) in {record.final_step} steps."),
        layer=largest, step=record.final_step,
        evidence={"update_ratio": typical, "initial_loss": start, "final_loss": end,
                  "loss_drop": drop, "lr": spec.optimizer.lr},
        suggestion=f"Raise the learning rate about {num(factor)}-fold: {remedy.words}",
        remedy=remedy.changes, onset_step=low[0] if low else record.final_step,
    )]


def _step_ratios(record: RunRecord, step: int) -> list[tuple[str, float]]:
    return [(layer, rows[0][1]) for layer, rows in _ratios_by_step(record, [step]).items()
            if rows]
