"""Run a spec on the CPU with the training core and record it as the worker does: the training
callbacks feed a diagnosis.RecordBuilder, whose record() is what the rules read."""

from __future__ import annotations

from typing import Any

import torch
from gradlab_contract.spec import JobSpec

from diagnosis import RecordBuilder, RunRecord
from training import TrainingCallbacks, train


def record_run(spec: dict[str, Any] | JobSpec) -> RunRecord:
    job = spec if isinstance(spec, JobSpec) else JobSpec.model_validate(spec)
    builder = RecordBuilder(job)
    callbacks = TrainingCallbacks(
        on_layers=builder.add_layers,
        on_metrics=builder.add_metrics,
        on_snapshots=builder.add_snapshots,
    )
    # These networks are tiny: one thread is faster than two that wait for each other.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(job, callbacks)
    finally:
        torch.set_num_threads(threads)
    return builder.record(status=result.status, total_steps=result.total_steps)
