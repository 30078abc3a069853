"""A big finished job written straight through the store, for the dashboard's performance check:
what a 100,000-step run of a 50-layer MLP leaves behind, without spending hours training one.

The numbers are made up but shaped like a real run (a loss that falls, gradients that shrink
towards the input), because the page must draw them, not just fetch them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gradlab_contract.spec import JobSpec

from store import findings, leases, series, snapshots
from store import jobs as store_jobs
from store.db import Database

KINDS = ("gradient", "weight", "activation")


def spec(steps: int, layers: int, snapshot_every: int) -> JobSpec:
    return JobSpec.model_validate({
        "name": f"synthetic-{steps}x{layers}",
        "data": {"dataset": "spiral"},
        "model": {"kind": "mlp", "hidden": [64] * (layers - 1), "activation": "relu"},
        "training": {"steps": steps, "eval_every": 500},
        "telemetry": {"snapshot_every": snapshot_every, "bins": 32},
    })


def snapshot_steps(steps: int, every: int) -> list[int]:
    """The worker's schedule (training/loop.py): step 1, every `every` steps, and the last."""
    return sorted({1, *range(every, steps + 1, every), steps})


def _snapshot(rng: np.random.Generator, kind: str, depth: int, layers: int, step: int,
              steps: int) -> dict[str, Any]:
    progress = step / steps
    if kind == "gradient":  # shrinks towards the input and as training converges
        scale = 10 ** (-2 - 3 * (layers - depth) / layers - progress)
    elif kind == "weight":
        scale = 0.2 * (1 + 0.3 * progress)
    else:
        scale = 1.0 + 0.5 * math.sin(depth / 5)
    values = rng.normal(0.0, scale, 512)
    if kind == "activation":
        values = np.maximum(values, 0.0)
    counts, edges = np.histogram(values, bins=32)
    stats = {
        "mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
        "max": float(values.max()), "l2": float(np.linalg.norm(values)),
        "zero_fraction": float((values == 0).mean()), "nan_count": 0.0, "inf_count": 0.0,
        **dict(zip(("p1", "p50", "p99"), (float(q) for q in
                                          np.percentile(values, [1, 50, 99])), strict=True)),
    }
    item: dict[str, Any] = {
        "step": step, "kind": kind, "layer": f"fc{depth}", "depth": depth, "stats": stats,
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }
    if kind == "gradient":
        log_counts, log_edges = np.histogram(np.log10(np.abs(values) + 1e-30), bins=32)
        item["log_histogram"] = {"edges": log_edges.tolist(), "counts": log_counts.tolist()}
    return item


def _metric_rows(steps: int, layers: int) -> list[tuple[int, str, float]]:
    rows: list[tuple[int, str, float]] = []
    for step in range(1, steps + 1):
        loss = 1.1 * math.exp(-step / (steps / 5)) + 0.05 + 0.02 * math.sin(step / 37)
        rows += [(step, "train_loss", loss), (step, "lr", 1e-3)]
        if step % 500 == 0:
            rows += [(step, "val_loss", loss + 0.03), (step, "val_accuracy", 1 - loss / 1.3)]
        if step % 100 == 0:
            rows += [(step, f"update_ratio/fc{d}", 10 ** (-3 - 2 * (layers - d) / layers))
                     for d in range(1, layers + 1)]
    return rows


def write_big_job(database: Database, *, team_id: str, steps: int = 100_000, layers: int = 50,
                  snapshot_every: int = 1000) -> str:
    """Create, fill and finish the job; return its id."""
    rng = np.random.default_rng(0)
    with database.transaction() as session:
        job = store_jobs.create_job(session, team_id=team_id,
                                    spec=spec(steps, layers, snapshot_every),
                                    total_steps=steps).job
        attempt = leases.claim_job(session, job_id=job.id, worker="synthetic", device="cpu",
                                   lease_seconds=3600)
        assert attempt is not None
        snapshots.write_layers(session, job_id=job.id, attempt=attempt, layers=[
            {"name": f"fc{d}", "type": "Linear", "shape": [64, 64], "parameters": 64 * 65,
             "depth": d} for d in range(1, layers + 1)])
    rows = _metric_rows(steps, layers)
    for start in range(0, len(rows), 50_000):
        with database.transaction() as session:
            series.write_metrics(session, job_id=job.id, attempt=attempt,
                                  rows=rows[start:start + 50_000])
    for step in snapshot_steps(steps, snapshot_every):
        with database.transaction() as session:
            snapshots.write_snapshots(session, job_id=job.id, attempt=attempt, snapshots=[
                _snapshot(rng, kind, depth, layers, step, steps)
                for kind in KINDS for depth in range(1, layers + 1)])
    with database.transaction() as session:
        # What the worker's final diagnosis would say about these gradients.
        findings.replace_findings(session, job_id=job.id, attempt=attempt, final=True, findings=[{
            "code": "vanishing_gradients", "severity": "error", "layer": "fc1", "step": steps,
            "title": "Vanishing gradients", "detail": "synthetic: fc1's gradient is 1e-3 of fc50's",
            "evidence": {"ratio": 1e-3}}])
        leases.finish_job(session, job_id=job.id, attempt=attempt, status="succeeded",
                          summary={"final_train_loss": 0.06, "final_val_accuracy": 0.95},
                          progress_step=steps)
    return job.id
