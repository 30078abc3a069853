"""vanishing_gradients and exploding_gradients (§2, §7).

"Gradients that differ by orders of magnitude between the first and last layers mean vanishing
(or exploding) gradients": the rules compare the gradient norm of the first layer (embeddings
aside: their gradient is sparse by design) with the output layer's, at each of the latest
snapshot steps, and take the median ratio. Exploding gradients can also grow in every layer at
once, which a ratio cannot see, so that rule also compares each layer's gradient with its own
weights, and the grad_norm series with its beginning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gradlab_contract.spec import JobSpec

from diagnosis.findings import Finding, num
from diagnosis.measure import median
from diagnosis.record import RunRecord
from diagnosis.remedy import remedy_for
from diagnosis.rules._common import init_words, plain_resnet
from diagnosis.thresholds import Thresholds


@dataclass(frozen=True)
class GradientRatio:
    step: int
    first: str
    last: str
    first_norm: float
    last_norm: float
    layers_between: int

    @property
    def value(self) -> float:
        return self.first_norm / self.last_norm


def gradient_ratios(record: RunRecord, t: Thresholds, *, every_step: bool = False
                    ) -> list[GradientRatio]:
    """First-to-last gradient norm ratios at the latest `window` snapshot steps (or all)."""
    found = []
    embeddings = {layer.name for layer in record.layers if layer.type == "embedding"}
    steps = record.steps("gradient") if every_step else record.recent_steps("gradient", t.window)
    for step in steps:
        snaps = [s for s in record.at("gradient", step) if s.layer not in embeddings]
        if len(snaps) < 2:
            continue
        first, last = snaps[0], snaps[-1]
        low, high = first.stat("l2"), last.stat("l2")
        if math.isfinite(low) and math.isfinite(high) and high > 0:
            found.append(GradientRatio(step, first.layer, last.layer, low, high,
                                last.depth - first.depth))
    return found


def typical_ratio(ratios: list[GradientRatio]) -> tuple[float, GradientRatio]:
    """The median ratio, and the latest step's measurement as the one to show."""
    return median(r.value for r in ratios), ratios[-1]


def magnitude(ratio: float) -> str:
    """1e-5 for 3.2e-6: how many orders of magnitude, which is what a reader compares."""
    return "0" if ratio <= 0 else f"1e{round(math.log10(ratio))}"


def vanishing_gradients(record: RunRecord, t: Thresholds) -> list[Finding]:
    ratios = gradient_ratios(record, t)
    if not ratios:
        return []
    typical, shown = typical_ratio(ratios)
    if not typical < t.vanishing_ratio:
        return []
    per_layer = shown.value ** (1 / shown.layers_between) if shown.value > 0 else 0.0
    why = _cause(record.spec, shown.layers_between, per_layer)
    remedy = remedy_for("vanishing_gradients", record.spec)
    onset = next((r.step for r in gradient_ratios(record, t, every_step=True)
                  if r.value < t.vanishing_ratio), shown.step)
    return [Finding(
        code="vanishing_gradients",
        severity="error" if typical < t.vanishing_error_ratio else "warning",
        title=(f"Gradients vanish before reaching {shown.first}: its gradient norm is "
               f"{num(shown.first_norm)}, {magnitude(shown.value)} of {shown.last}'s "
               f"(step {shown.step})"),
        detail=(f"{why}, so the lower layers receive almost no gradient and stop learning (§2). "
                f"Median ratio over the last {len(ratios)} snapshots: {num(typical)}."),
        layer=shown.first, step=shown.step,
        evidence={"first_layer": shown.first, "first_grad_norm": shown.first_norm,
                  "last_layer": shown.last, "last_grad_norm": shown.last_norm,
                  "ratio": shown.value, "median_ratio": typical, "per_layer_factor": per_layer,
                  "snapshots": len(ratios)},
        suggestion=remedy.words if remedy else None, remedy=remedy.changes if remedy else None,
        onset_step=onset,
    )]


def _cause(spec: JobSpec, layers: int, per_layer: float) -> str:
    """Why the gradient shrinks, most specific cause first."""
    activation, scheme = spec.model.activation, spec.model.init.scheme
    shrink = f"by about {num(per_layer)} per layer over {layers} layers"
    if plain_resnet(spec):
        return (f"This plain network has no shortcuts, so the backward signal must pass through "
                f"every one of its layers and is scaled at each: the gradient shrank {shrink}")
    if activation == "sigmoid":
        return (f"Sigmoid's derivative is at most 0.25 and back-propagation multiplies one such "
                f"factor per layer: the gradient shrank {shrink}")
    if scheme in ("normal", "uniform", "constant"):
        return (f"With {init_words(spec)} every layer scales the backward signal down: the "
                f"gradient shrank {shrink}")
    if activation == "tanh":
        return (f"tanh's derivative is at most 1 and near 0 wherever it saturates: the gradient "
                f"shrank {shrink}")
    return f"The gradient shrank {shrink}"
