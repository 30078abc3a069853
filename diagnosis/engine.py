"""diagnose(record): run every rule, link each symptom to the cause that came first, order them.

A finding explains another only when it is a known cause of it (EXPLAINS) *and* its onset is
not later: a 30-layer ReLU net with Xavier init collapses at step 1 and its units die from step
~300, so the collapse explains the dead units, not the other way round. The explained finding is
kept, with `caused_by` naming its cause and its cause's remedy (a symptom's remedy is its
cause's), so a reader sees the chain instead of a list of unrelated alarms.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from diagnosis.findings import CODES, SEVERITY_RANK, Finding
from diagnosis.record import RunRecord
from diagnosis.rules import RULES
from diagnosis.thresholds import DEFAULT, Thresholds

# A finding of the key's code can cause the listed ones (§2, §3, §7):
# - zero/constant init (symmetry): identical units are "dead", their layers' spread is 0, nothing
#   moves ("lr too low") and the loss stays at chance;
# - a learning rate too high diverges the loss and kills ReLUs; exploding gradients do the same;
# - a collapsing signal makes vanishing gradients, tiny updates, dead units and a stuck loss;
# - dead units output exactly 0, so their layer's spread is 0 (collapse), when they died first;
# - a run that diverged or overfits is not "still converging".
EXPLAINS: dict[str, frozenset[str]] = {
    "symmetry": frozenset({"dead_units", "activation_collapse", "vanishing_gradients",
                           "exploding_gradients", "lr_too_low", "saturation", "no_learning",
                           "not_converged"}),
    "exploding_gradients": frozenset({"divergence", "lr_too_high", "dead_units", "no_learning",
                                      "not_converged"}),
    "lr_too_high": frozenset({"divergence", "dead_units", "no_learning", "not_converged",
                              "overfitting", "lr_too_low"}),
    "divergence": frozenset({"not_converged", "overfitting", "no_learning", "lr_too_low"}),
    "activation_collapse": frozenset({"dead_units", "vanishing_gradients", "lr_too_low",
                                      "no_learning", "not_converged"}),
    "saturation": frozenset({"vanishing_gradients", "lr_too_low", "no_learning",
                             "not_converged"}),
    "dead_units": frozenset({"activation_collapse", "vanishing_gradients", "lr_too_low",
                             "no_learning", "not_converged"}),
    "vanishing_gradients": frozenset({"lr_too_low", "no_learning", "not_converged"}),
    "lr_too_low": frozenset({"no_learning", "not_converged"}),
    "no_learning": frozenset({"not_converged"}),
    "overfitting": frozenset({"not_converged"}),
}


def diagnose(record: RunRecord, thresholds: Thresholds = DEFAULT) -> list[Finding]:
    """What went wrong in the run: root causes first (most severe first), then the symptoms
    each explains, in the order they began.

    Live (record.status "running") the rules see the run so far; rules about how a run ended
    (not converged) wait for the final record.
    """
    return link(finding for rule in RULES for finding in rule(record, thresholds))


def link(findings: Iterable[Finding]) -> list[Finding]:
    """Set each finding's `caused_by` (and its cause's remedy), roots first, then symptoms."""
    found = list(findings)
    by_code = {finding.code: finding for finding in found}
    causes = {finding.code: cause_of(finding, found) for finding in found}
    linked = []
    for finding in found:
        cause = causes[finding.code]
        if cause is None:
            linked.append(finding)
            continue
        root = _root(cause, causes, by_code)
        linked.append(dataclasses.replace(finding, caused_by=cause, remedy=root.remedy,
                                          suggestion=root.suggestion))
    return sorted(linked, key=_order)


def explains(cause: Finding, symptom: Finding) -> bool:
    """Whether `cause` explains `symptom`: a known cause that did not begin later. When each can
    cause the other and both began at the same step, CODES' order (causes first) decides."""
    if symptom.code not in EXPLAINS.get(cause.code, frozenset()):
        return False
    began, followed = _onset(cause), _onset(symptom)
    if began > followed:
        return False
    mutual = cause.code in EXPLAINS.get(symptom.code, frozenset())
    tie_lost = began == followed and CODES.index(symptom.code) < CODES.index(cause.code)
    return not (mutual and tie_lost)


def cause_of(symptom: Finding, findings: list[Finding]) -> str | None:
    """The code of the earliest finding that explains `symptom` (ties: CODES' order)."""
    candidates = [f for f in findings if f is not symptom and explains(f, symptom)]
    if not candidates:
        return None
    return min(candidates, key=lambda f: (_onset(f), CODES.index(f.code))).code


def _root(code: str, causes: dict[str, str | None], by_code: dict[str, Finding]) -> Finding:
    seen = {code}
    while (parent := causes.get(code)) is not None and parent not in seen:
        seen.add(parent)
        code = parent
    return by_code[code]


def _onset(finding: Finding) -> float:
    """A finding of unknown onset counts as the latest: it can explain only its likes."""
    return math.inf if finding.onset_step is None else float(finding.onset_step)


def _order(finding: Finding) -> tuple[int, float, int]:
    """Roots by severity, then causes before symptoms; each symptom after them, by onset."""
    if finding.caused_by is None:
        return 0, SEVERITY_RANK[finding.severity], CODES.index(finding.code)
    return 1, _onset(finding), CODES.index(finding.code)
