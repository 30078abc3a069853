"""diagnose(record): run every rule, drop what a root cause already explains, order the rest."""

from __future__ import annotations

from diagnosis.findings import CODES, SEVERITY_RANK, Finding
from diagnosis.record import RunRecord
from diagnosis.rules import RULES
from diagnosis.thresholds import DEFAULT, Thresholds

# A finding of the key's code explains the listed ones, which would only repeat it in worse
# words: a zero-initialized ReLU network's units are "dead" and its "learning rate too low"
# (nothing moves), but the cause is symmetry; a diverged run is neither converging nor
# overfitting.
EXPLAINS: dict[str, frozenset[str]] = {
    "symmetry": frozenset({"dead_units", "activation_collapse", "vanishing_gradients",
                           "exploding_gradients", "lr_too_low", "saturation"}),
    "divergence": frozenset({"not_converged", "overfitting", "no_learning", "lr_too_low"}),
    # Dead units output exactly 0: their layer's spread is 0 because they died, not collapsed.
    "dead_units": frozenset({"lr_too_low", "activation_collapse"}),
    # Tiny gradients make tiny updates whatever the learning rate.
    "vanishing_gradients": frozenset({"lr_too_low"}),
    "activation_collapse": frozenset({"lr_too_low"}),
    "saturation": frozenset({"lr_too_low"}),
    "lr_too_low": frozenset({"not_converged"}),  # of course it has not: the steps are tiny
    "no_learning": frozenset({"not_converged"}),
}


def diagnose(record: RunRecord, thresholds: Thresholds = DEFAULT) -> list[Finding]:
    """What went wrong in the run, most severe first, causes before symptoms.

    Live (record.status "running") the rules see the run so far; rules about how a run ended
    (not converged) wait for the final record.
    """
    findings = [finding for rule in RULES for finding in rule(record, thresholds)]
    present = {finding.code for finding in findings}
    explained = set().union(*(EXPLAINS.get(code, frozenset()) for code in present))
    kept = [finding for finding in findings if finding.code not in explained]
    return sorted(kept, key=lambda f: (SEVERITY_RANK[f.severity], CODES.index(f.code)))
