"""The jobs of the chaos suite: small MLPs on the spiral set, long enough to be hit mid-run."""

from __future__ import annotations

from typing import Any


def spiral(steps: int = 3000, *, name: str = "chaos", snapshot_every: int = 100) -> dict[str, Any]:
    """A [64, 64] MLP; about 1.5-4 ms a step on one loaded core, so 3000 steps take seconds,
    with a checkpoint every 50 steps (the suite's setting)."""
    return {
        "name": name,
        "data": {"dataset": "spiral", "options": {"points": 300}},
        "model": {"hidden": [64, 64]},
        "optimizer": {"name": "adam", "lr": 0.005},
        "training": {"steps": steps, "batch_size": 64, "eval_every": 100, "seed": 7},
        "telemetry": {"snapshot_every": snapshot_every, "bins": 16},
    }


def endless(name: str = "endless") -> dict[str, Any]:
    """A job that never ends on its own within a test: it is killed, cancelled or timed out."""
    return spiral(200_000, name=name, snapshot_every=1000)
