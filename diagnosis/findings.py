"""What a diagnosis says: findings, each a code, a severity, plain words, evidence and a remedy.

A Finding is a plain dataclass; ``to_dict()`` gives exactly the fields of the API model
gradlab_contract.models.Finding, so the worker and the service convert without knowing each other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from gradlab_contract.models import FINDING_CODES

Severity = Literal["info", "warning", "error"]
SEVERITY_RANK: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
# Every code, causes before symptoms: the API contract lists them (with what each means), so a
# client can know them too; the rules' modules say which lecture section each comes from.
CODES: tuple[str, ...] = FINDING_CODES


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    title: str
    detail: str
    layer: str | None = None
    step: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    suggestion: str | None = None
    # Spec changes that address it, by dotted path: {"model.init.scheme": "kaiming_normal"}.
    remedy: dict[str, Any] | None = None
    # The first recorded step where the rule holds: what lets a cause be told from a symptom.
    onset_step: int | None = None
    # The code of the finding that explains this one (its cause); None for a root cause.
    caused_by: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown finding code {self.code!r}")
        # JSON (and so the API and PostgreSQL's JSONB) has no NaN; 4 digits are all a reader uses.
        object.__setattr__(self, "evidence", clean(self.evidence))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def clean(value: Any) -> Any:
    """A JSON-safe copy: floats rounded to 4 significant digits, NaN and +-inf as None."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return value
    if isinstance(value, float):
        return float(f"{value:.4g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean(item) for item in value]
    return clean(float(value))  # numpy scalars


def num(value: float, digits: int = 3) -> str:
    """A number as a reader wants it: 0.25, 13.4, 3.2e-07 (losses get digits=4: 1.099)."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e4:
        return f"{value:.{digits}g}"
    return f"{value:.2g}"


def pct(fraction: float) -> str:
    return f"{100 * fraction:.0f}%"
