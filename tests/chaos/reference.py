"""What a job records when nothing goes wrong: the same spec trained here, in this process,
by the same engine the workers use (on one thread, as the workers run), and the comparison of
a job's stored rows with it.

Training is deterministic on CPU (training/loop.py), so a job that was killed, resumed or
released must store exactly these rows: one per metric and step, with the same values. Only
`step_time` (wall-clock) differs from run to run and is left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

TIMING = {"step_time"}


@dataclass(frozen=True)
class Reference:
    metrics: dict[tuple[str, int], float | None]
    snapshots: dict[tuple[str, str, int], dict[str, Any]]
    summary: dict[str, float]


@dataclass
class Comparison:
    expected: int
    lost: list[tuple[str, int]] = field(default_factory=list)
    extra: list[tuple[str, int]] = field(default_factory=list)
    duplicated: list[tuple[str, int]] = field(default_factory=list)
    differing: list[tuple[str, int]] = field(default_factory=list)
    snapshots_lost: int = 0
    snapshots_differing: int = 0
    example: str = ""

    @property
    def clean(self) -> bool:
        return not (self.lost or self.extra or self.duplicated or self.differing
                    or self.snapshots_lost or self.snapshots_differing)

    def __str__(self) -> str:
        return (f"{self.expected} rows expected: lost {len(self.lost)} {self.lost[:5]}, "
                f"extra {len(self.extra)} {self.extra[:5]}, duplicated {len(self.duplicated)}, "
                f"differing {len(self.differing)} {self.differing[:5]}, snapshots lost "
                f"{self.snapshots_lost}, snapshots differing {self.snapshots_differing} "
                f"{self.example}")


def reference(spec: dict[str, Any]) -> Reference:
    """The rows of `spec` trained without faults (its name does not matter; cached)."""
    return _reference(json.dumps({**spec, "name": None}, sort_keys=True))


@cache
def _reference(spec_json: str) -> Reference:
    import torch
    from gradlab_contract.models import Snapshot
    from gradlab_contract.spec import JobSpec

    from training import train
    from training.types import TrainingCallbacks

    metrics: dict[tuple[str, int], float | None] = {}
    snapshots: dict[tuple[str, str, int], dict[str, Any]] = {}

    def on_metrics(step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            if name not in TIMING:
                metrics[(name, step)] = value

    def on_snapshots(step: int, items: list[Snapshot]) -> None:
        for item in items:
            snapshots[(item.kind, item.layer, item.step)] = _plain(item.stats)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(JobSpec.model_validate_json(spec_json),
                       TrainingCallbacks(on_metrics=on_metrics, on_snapshots=on_snapshots))
    finally:
        torch.set_num_threads(threads)
    assert result.status == "succeeded", result
    return Reference(metrics, snapshots, dict(result.summary))


def _plain(stats: dict[str, float]) -> dict[str, Any]:
    """As the store gives it back: JSON, with a non-finite number as null."""
    return {key: (value if value == value and abs(value) != float("inf") else None)
            for key, value in stats.items()}


def compare(
    expected: Reference,
    rows: list[tuple[str, int, float | None, int]],
    snapshots: dict[tuple[str, str, int], dict[str, Any]],
) -> Comparison:
    found: dict[tuple[str, int], float | None] = {}
    comparison = Comparison(expected=len(expected.metrics))
    for name, step, value, _attempt in rows:
        if name in TIMING:
            continue
        if (name, step) in found:
            comparison.duplicated.append((name, step))
        found[(name, step)] = value
    comparison.lost = sorted(set(expected.metrics) - set(found))
    comparison.extra = sorted(set(found) - set(expected.metrics))
    comparison.differing = sorted(
        key for key in set(found) & set(expected.metrics) if found[key] != expected.metrics[key]
    )
    comparison.snapshots_lost = len(set(expected.snapshots) - set(snapshots))
    differing = [key for key, stats in snapshots.items()
                 if key in expected.snapshots and stats != expected.snapshots[key]]
    comparison.snapshots_differing = len(differing)
    comparison.example = (
        f"{differing[0]}: stored {snapshots[differing[0]]} expected "
        f"{expected.snapshots[differing[0]]}" if differing else ""
    )
    return comparison
