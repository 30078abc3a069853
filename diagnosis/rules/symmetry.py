"""symmetry: every unit of a layer is the same (§3: zero or constant initialization).

A layer whose units start identical computes the same output in every unit and gives each the
same gradient, so they stay identical for ever. The probes' unit_std (the spread across units,
averaged over inputs) is then 0; the rule reads it relative to the layer's overall spread.
"""

from __future__ import annotations

import dataclasses

from diagnosis.findings import Finding, num
from diagnosis.record import RunRecord, SnapshotRecord
from diagnosis.remedy import remedy_for
from diagnosis.rules._common import init_words
from diagnosis.thresholds import Thresholds


def symmetry(record: RunRecord, t: Thresholds) -> list[Finding]:
    kind = "weight" if record.steps("weight") else "activation"
    steps = record.steps(kind)
    if not steps:
        return []
    step = steps[-1]  # still identical at the latest step: the symmetry was never broken
    stuck = _stuck(record, kind, step, t)
    if not stuck:
        return []
    onset = next(s for s in steps if _stuck(record, kind, s, t))
    return [dataclasses.replace(_finding(record, stuck, kind, step), onset_step=onset)]


def _stuck(record: RunRecord, kind: str, step: int, t: Thresholds) -> list[SnapshotRecord]:
    hidden = {layer.name for layer in record.hidden_layers if layer.units > 1}
    return [snap for snap in record.at(kind, step)
            if snap.layer in hidden and _identical(snap, t)]


def _identical(snap: SnapshotRecord, t: Thresholds) -> bool:
    unit_std, spread, l2 = snap.stat("unit_std"), snap.stat("std"), snap.stat("l2")
    if l2 == 0.0:
        return True  # all zero: every unit the same
    return unit_std <= t.symmetry_relative_unit_std * max(spread, abs(snap.stat("mean")))


def _finding(record: RunRecord, stuck: list[SnapshotRecord], kind: str, step: int) -> Finding:
    spec = record.spec
    names = [snap.layer for snap in stuck]
    first = stuck[0]
    zero = all(snap.stat("l2") == 0.0 for snap in stuck)
    what = "weights" if kind == "weight" else "outputs"
    spread = ("all of them are 0" if zero else f"spread across units "
              f"{num(first.stat('unit_std'))}, overall {num(first.stat('std'))}")
    detail = (
        f"At step {step} every unit of {', '.join(names)} has the same {what} ({spread}). The "
        f"model was initialized with {init_words(spec)}: each unit of a layer computes the same "
        "output and receives the same gradient, so the units never become different and the "
        "layer works like a single unit (§3)."
    )
    if zero:
        detail += (" With zero weights the hidden activations and the gradients that reach the "
                   "hidden weights are 0: the network does not learn at all.")
    remedy = remedy_for("symmetry", spec)
    assert remedy is not None  # the table always has one for symmetry
    return Finding(
        code="symmetry", severity="error",
        title=(f"The units of {', '.join(names)} are identical: symmetry was never broken "
               f"({spec.model.init.scheme} init)"),
        detail=detail, layer=first.layer, step=step,
        evidence={
            "layers": names, "kind": kind, "init": spec.model.init.scheme,
            "unit_std": {snap.layer: snap.stat("unit_std") for snap in stuck},
            "std": {snap.layer: snap.stat("std") for snap in stuck},
        },
        suggestion=remedy.words, remedy=remedy.changes,
    )
