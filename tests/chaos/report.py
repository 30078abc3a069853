"""The table the chaos suite hands to operators: fault | what happened | time to recover | rows
lost, with the numbers each test measured. Written to test-artifacts/chaos-report.json (and .md)
and printed at the end of the run."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
JSON_REPORT = ARTIFACTS / "chaos-report.json"
MD_REPORT = ARTIFACTS / "chaos-report.md"


@dataclass
class Row:
    test: str
    fault: str
    happened: str
    recover_seconds: float | None
    rows_lost: int
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChaosReport:
    rows: list[Row] = field(default_factory=list)

    def add(
        self, test: str, fault: str, happened: str, recover_seconds: float | None,
        rows_lost: int, **details: Any,
    ) -> None:
        self.rows.append(Row(test, fault, happened, recover_seconds, rows_lost, details))

    def write(self) -> None:
        """Write this run's rows (a run replaces the previous run's report)."""
        ARTIFACTS.mkdir(exist_ok=True)
        rows = [asdict(row) for row in self.rows]
        JSON_REPORT.write_text(json.dumps(rows, indent=2, default=str) + "\n")
        MD_REPORT.write_text(markdown(rows))


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| fault | what happened | time to recover | rows lost |", "| --- | --- | --- | --- |"]
    for row in rows:
        seconds = row["recover_seconds"]
        recover = "n/a" if seconds is None else f"{seconds:.1f} s"
        lines.append(f"| {row['fault']} | {row['happened']} | {recover} | {row['rows_lost']} |")
    return "\n".join(lines) + "\n"
