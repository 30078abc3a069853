"""activation_collapse, saturation and dead_units: what the per-layer activation histograms show
(§7), and the initialization or learning rate behind it (§2, §3)."""

from __future__ import annotations

import math

from diagnosis.findings import Finding, num, pct
from diagnosis.measure import layer_medians
from diagnosis.record import RunRecord, SnapshotRecord
from diagnosis.remedy import remedy_for
from diagnosis.rules._common import init_words, saturating, uses_relu_family
from diagnosis.rules.learning_rate import lr_evidence, safer_lr
from diagnosis.thresholds import Thresholds


def activation_collapse(record: RunRecord, t: Thresholds) -> list[Finding]:
    """The spread of the activations shrinks layer after layer towards 0 (the tanh, std 0.01
    picture of §3). Checked at every step kept, the initialization included: that is where an
    init problem shows, even when an adaptive optimizer later grows the weights out of it."""
    hidden = {layer.name for layer in record.hidden_layers}
    measured: list[tuple[int, list[SnapshotRecord], float]] = []
    for step in record.steps("activation"):
        snaps = [s for s in record.at("activation", step) if s.layer in hidden]
        stds = [s.stat("std") for s in snaps]
        if len(snaps) < t.collapse_min_hidden or not all(math.isfinite(v) for v in stds):
            continue
        if stds[0] > 0:
            measured.append((step, snaps, stds[-1] / stds[0]))
    collapsed = [m for m in measured if m[2] < t.collapse_ratio]
    if not collapsed:
        return []
    step, snaps, ratio = collapsed[0]
    last_step, _, last_ratio = measured[-1]
    spec = record.spec
    profile = ", ".join(f"{s.layer} {num(s.stat('std'))}" for s in snaps)
    per_layer = ratio ** (1 / (len(snaps) - 1))
    detail = (f"Activation std by layer at step {step}: {profile}. With {init_words(spec)} and "
              f"{spec.model.activation}, each layer shrinks the signal by about {num(per_layer)}, "
              "so the upper layers' histograms narrow to a spike at 0, and the gradients shrink "
              "with them (§3).")
    if last_ratio >= t.collapse_ratio:
        detail += (f" By step {last_step} training had grown the weights enough to lift the "
                   f"ratio to {num(last_ratio)}; the steps until then were largely wasted.")
    remedy = remedy_for("activation_collapse", spec)
    return [Finding(
        code="activation_collapse",
        severity="warning" if last_ratio >= t.collapse_ratio else "error",
        title=(f"Activations collapse towards 0 with depth: {snaps[-1].layer}'s spread is "
               f"{num(ratio)} of {snaps[0].layer}'s (step {step})"),
        detail=detail, layer=snaps[-1].layer, step=step,
        evidence={"std": {s.layer: s.stat("std") for s in snaps}, "ratio": ratio,
                  "per_layer_factor": per_layer, "latest_step": last_step,
                  "latest_ratio": last_ratio},
        suggestion=remedy.words if remedy else None, remedy=remedy.changes if remedy else None,
        onset_step=step,
    )]


def saturation(record: RunRecord, t: Thresholds) -> list[Finding]:
    spec = record.spec
    if not saturating(spec):
        return []
    steps = record.recent_steps("activation", t.window)
    fractions = layer_medians(record, "activation", "saturated_fraction", steps)
    hot = {layer: f for layer, f in fractions.items() if f > t.saturation_fraction}
    if not hot:
        return []
    worst = max(hot, key=lambda layer: hot[layer])
    bounds = "±1" if spec.model.activation == "tanh" else "0 or 1"
    remedy = remedy_for("saturation", spec)
    profile = ", ".join(f"{layer} {pct(f)}" for layer, f in fractions.items())
    detail = (f"Share of outputs within 0.01 of {bounds} (median of the last {len(steps)} "
              f"snapshots): {profile}. There {spec.model.activation}'s derivative is near 0, so "
              "these units pass almost no gradient: learning slows or stops (§2).")
    if spec.model.init.scheme not in ("xavier_normal", "xavier_uniform", "orthogonal"):
        detail += (f" With {init_words(spec)} the pre-activations are too large for "
                   f"{spec.model.activation} (§3).")
    return [Finding(
        code="saturation",
        severity="error" if hot[worst] >= t.saturation_error_fraction else "warning",
        title=(f"{pct(hot[worst])} of {worst}'s {spec.model.activation} outputs sit at {bounds} "
               f"(step {steps[-1]})"),
        detail=detail, layer=worst, step=steps[-1],
        evidence={"saturated_fraction": fractions, "snapshots": len(steps)},
        suggestion=remedy.words if remedy else None, remedy=remedy.changes if remedy else None,
        onset_step=_first_step_over(record, "saturated_fraction", t.saturation_fraction),
    )]


def dead_units(record: RunRecord, t: Thresholds) -> list[Finding]:
    spec = record.spec
    if not uses_relu_family(spec):
        return []
    steps = record.recent_steps("activation", t.window)
    fractions = layer_medians(record, "activation", "dead_fraction", steps)
    dead = {layer: f for layer, f in fractions.items() if f > t.dead_fraction}
    if not dead:
        return []
    worst = max(dead, key=lambda layer: dead[layer])
    profile = ", ".join(f"{layer} {pct(f)}" for layer, f in fractions.items())
    detail = (f"Share of units that are 0 for every example (median of the last {len(steps)} "
              f"snapshots): {profile}. A ReLU unit whose input is negative for every example "
              "passes no gradient, so it never recovers (§2).")
    cause = lr_evidence(record, t, first_step=True)
    if cause:
        detail += (f" The learning rate ({spec.optimizer.name} at lr {num(spec.optimizer.lr)}) "
                   f"is the likely cause: {cause}; a step that large pushes units into the "
                   "region where they output 0 for every input.")
    remedy = remedy_for("dead_units", spec, lr=safer_lr(record, t) if cause else None)
    assert remedy is not None  # the table always has one for dead units
    return [Finding(
        code="dead_units",
        severity="error" if dead[worst] >= t.dead_error_fraction else "warning",
        title=(f"{pct(dead[worst])} of {worst}'s units are dead: they output 0 for every input "
               f"(step {steps[-1]})"),
        detail=detail, layer=worst, step=steps[-1],
        evidence={"dead_fraction": fractions, "snapshots": len(steps), "lr_cause": cause},
        suggestion=remedy.words, remedy=remedy.changes,
        onset_step=_first_step_over(record, "dead_fraction", t.dead_fraction),
    )]


def _first_step_over(record: RunRecord, stat: str, threshold: float) -> int | None:
    """The first activation snapshot step where some layer's `stat` passes `threshold`."""
    for step in record.steps("activation"):
        if any(snap.stat(stat) > threshold for snap in record.at("activation", step)):
            return step
    return None
