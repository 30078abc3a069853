"""exploding_gradients (§3, §7): gradients orders of magnitude too large.

Three ways to see it, in the order they are reported: a layer whose gradient dwarfs its own
weights (one step would move them many times over), a first layer whose gradient dwarfs the
output layer's, and a grad_norm series that grew by orders of magnitude since the start.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gradlab_contract.spec import RELU_FAMILY

from diagnosis.findings import Finding, num
from diagnosis.measure import first_nonfinite, median
from diagnosis.record import RunRecord
from diagnosis.remedy import remedy_for
from diagnosis.rules._common import init_words, weights_by_construction
from diagnosis.rules.gradients import gradient_ratios, magnitude, typical_ratio
from diagnosis.rules.learning_rate import safer_lr
from diagnosis.thresholds import Thresholds


def exploding_gradients(record: RunRecord, t: Thresholds) -> list[Finding]:
    """Silent on |gradient| / |weights| where the weights are zero or tiny by construction (zero
    or constant init, see weights_by_construction): there the ratio is large because the
    denominator is nothing, not because the gradient is; the symmetry rule names that run."""
    found = _relative(record, t) or _first_to_last(record, t) or _growth(record, t)
    if found is None:
        return []
    title, layer, step, evidence, onset = found
    spec = record.spec
    init = spec.model.init
    if init.scheme == "normal" and spec.model.activation in RELU_FAMILY:
        fan_in = _typical_fan_in(record)
        why = (f"With {init_words(spec)} each ReLU layer multiplies the signal by about "
               f"std x sqrt(fan_in / 2) = {num(init.std * math.sqrt(fan_in / 2))}, forward and "
               "backward, so after a few layers the loss and its gradients are enormous (§3). ")
    elif init.scheme in ("normal", "uniform", "constant"):
        why = f"With {init_words(spec)} the weights are too large for the depth (§3). "
    else:
        why = ""
    remedy = remedy_for("exploding_gradients", spec, lr=safer_lr(record, t))
    assert remedy is not None  # the table always has one for exploding gradients
    return [Finding(
        code="exploding_gradients", severity="error", title=title,
        detail=(why + "Updates this large overshoot: the loss jumps around or turns NaN, and "
                "training cannot settle (§7)."),
        layer=layer, step=step, evidence=evidence,
        suggestion=remedy.words, remedy=remedy.changes, onset_step=onset,
    )]


# (title, layer, step shown, evidence, onset step)
_Found = tuple[str, str | None, int | None, dict[str, Any], int | None]


def _relative(record: RunRecord, t: Thresholds) -> _Found | None:
    """The layer whose median |gradient| / |weights| is largest, if above the threshold."""
    if weights_by_construction(record.spec):
        return None
    ratios: dict[str, list[tuple[int, float, float]]] = {}
    for step in record.recent_steps("gradient", t.window):
        weights = {s.layer: s.stat("l2") for s in record.at("weight", step)}
        for grad in record.at("gradient", step):
            w, g = weights.get(grad.layer, math.nan), grad.stat("l2")
            if math.isfinite(w) and math.isfinite(g) and w > 0:
                ratios.setdefault(grad.layer, []).append((step, g, w))
    typical = {layer: median(g / w for _, g, w in rows) for layer, rows in ratios.items()}
    worst = max(typical, key=lambda layer: typical[layer], default=None)
    if worst is None or not typical[worst] > t.exploding_relative_gradient:
        return None
    step, g, w = ratios[worst][-1]
    title = (f"Gradients explode: {worst}'s gradient norm is {num(g)}, {num(g / w)}x its "
             f"weight norm (step {step})")
    onset = next((s for s, g_, w_ in ratios[worst] if g_ / w_ > t.exploding_relative_gradient),
                 step)
    return title, worst, step, {"layer": worst, "grad_norm": g, "weight_norm": w,
                                "median_grad_to_weight": typical[worst]}, onset


def _first_to_last(record: RunRecord, t: Thresholds) -> _Found | None:
    ratios = gradient_ratios(record, t)
    if not ratios:
        return None
    typical, shown = typical_ratio(ratios)
    if not typical > t.exploding_ratio:
        return None
    title = (f"Gradients explode towards the input: {shown.first}'s gradient norm is "
             f"{num(shown.first_norm)}, {magnitude(shown.value)} times {shown.last}'s "
             f"(step {shown.step})")
    onset = next((r.step for r in gradient_ratios(record, t, every_step=True)
                  if r.value > t.exploding_ratio), shown.step)
    return title, shown.first, shown.step, {"first_layer": shown.first, "ratio": shown.value,
                                            "median_ratio": typical}, onset


def _growth(record: RunRecord, t: Thresholds) -> _Found | None:
    steps, values = record.series("grad_norm")
    if len(values) < 10:
        return None
    stop = first_nonfinite(steps, values)
    early = median(values[: max(3, len(values) // 10)].tolist())
    finite = values[: int((steps < stop).sum())] if stop is not None else values
    if not early > 0 or not len(finite):
        return None
    peak_at = int(finite.argmax())
    peak = float(finite[peak_at])
    if not peak / early > t.exploding_growth:
        return None
    step = int(steps[peak_at])
    title = (f"Gradients explode: the gradient norm grew {magnitude(peak / early)}-fold, to "
             f"{num(peak)} at step {step}")
    onset = int(steps[int(np.argmax(finite / early > t.exploding_growth))])
    return title, None, step, {"early_grad_norm": early, "peak_grad_norm": peak,
                               "growth": peak / early, "nonfinite_step": stop}, onset


def _typical_fan_in(record: RunRecord) -> int:
    fans = [math.prod(layer.shape[1:]) for layer in record.hidden_layers if len(layer.shape) > 1]
    return int(median(fans)) if fans else 1
