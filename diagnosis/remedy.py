"""Applying findings' remedies to a spec: each remedy is {dotted path: new value}.

The caller validates the result as a JobSpec: a remedy is a proposal, and the spec's own rules
(and the deployment's limits) still decide whether it can run.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from diagnosis.findings import CODES


class RemedyError(ValueError):
    """The requested codes cannot be applied; the message says which and why."""


def apply_remedies(
    spec: Mapping[str, Any], findings: Iterable[Any], codes: Sequence[str]
) -> dict[str, Any]:
    """A copy of `spec` (a JobSpec as JSON) with the remedies of `codes` applied, in the order
    given: where two remedies set the same field, the later code wins."""
    remedies = _remedies_by_code(findings)
    wanted = list(dict.fromkeys(codes))  # a repeated code is applied once
    unknown = [code for code in wanted if code not in CODES]
    if unknown:
        raise RemedyError(f"{', '.join(unknown)}: not a finding code (one of {', '.join(CODES)})")
    absent = [code for code in wanted if code not in remedies]
    if absent:
        found = ", ".join(sorted(remedies)) or "none"
        raise RemedyError(f"{', '.join(absent)}: not among this job's findings ({found})")
    bare = [code for code in wanted if not remedies[code]]
    if bare:
        raise RemedyError(f"{', '.join(bare)}: this finding has no remedy to apply; fix its "
                          "cause, named by the other findings")
    result = copy.deepcopy(dict(spec))
    for code in wanted:
        for path, value in (remedies[code] or {}).items():
            set_path(result, path, value)
    return result


def set_path(document: dict[str, Any], path: str, value: Any) -> None:
    """document["a"]["b"]["c"] = value for "a.b.c", making the missing levels."""
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        if node.get(part) is None:  # absent, or an optional section left null (model.resnet)
            node[part] = {}
        child = node[part]
        if not isinstance(child, dict):
            raise RemedyError(f"{path}: {part} is not a section of the spec")
        node = child
    node[leaf] = value


def _remedies_by_code(findings: Iterable[Any]) -> dict[str, dict[str, Any] | None]:
    """The remedy of each code's first finding (findings come most severe first)."""
    remedies: dict[str, dict[str, Any] | None] = {}
    for finding in findings:
        code = finding["code"] if isinstance(finding, Mapping) else finding.code
        remedy = finding.get("remedy") if isinstance(finding, Mapping) else finding.remedy
        remedies.setdefault(code, remedy)
    return remedies
