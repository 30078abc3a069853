"""The rules, one small module per family. Each is a pure function
``rule(record, thresholds) -> list[Finding]`` that reads only the RunRecord."""

from __future__ import annotations

from collections.abc import Callable

from diagnosis.findings import Finding
from diagnosis.record import RunRecord
from diagnosis.rules.activations import activation_collapse, dead_units, saturation
from diagnosis.rules.exploding import exploding_gradients
from diagnosis.rules.gradients import vanishing_gradients
from diagnosis.rules.learning_rate import lr_too_high, lr_too_low
from diagnosis.rules.loss import divergence, no_learning, not_converged, overfitting
from diagnosis.rules.symmetry import symmetry
from diagnosis.thresholds import Thresholds

Rule = Callable[[RunRecord, Thresholds], list[Finding]]

RULES: tuple[Rule, ...] = (
    symmetry,
    divergence,
    exploding_gradients,
    vanishing_gradients,
    activation_collapse,
    saturation,
    dead_units,
    lr_too_high,
    lr_too_low,
    no_learning,
    overfitting,
    not_converged,
)

__all__ = ["RULES", "Rule"]
