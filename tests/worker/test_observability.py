"""worker.observability: steps and the rate counted from the training loop's progress reports,
the log context of a claimed job, and the parent's own view (dead pool processes forgotten, CUDA
untouched)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from prometheus_client import Counter, Gauge

from store.logs import clear_job, current_job
from training.types import TrainingCallbacks
from worker import observability
from worker.observability import ChildMetrics, ParentCollector, StepTracker


def metrics() -> ChildMetrics:
    def gauge(name: str, *labels: str) -> Gauge:
        return Gauge(name, name, labels, registry=None)

    return ChildMetrics(
        steps=Counter("steps", "steps", registry=None), steps_per_second=gauge("rate"),
        running=gauge("running"), jobs=Counter("jobs", "jobs", ["outcome"], registry=None),
        gpu_allocated=gauge("allocated", "device"), gpu_reserved=gauge("reserved", "device"),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_steps_are_counted_and_the_rate_sampled_each_second() -> None:
    found, clock = metrics(), Clock()
    tracker = StepTracker(found, clock)
    tracker.progress(1)
    for step in range(2, 21):
        clock.now += 0.1
        tracker.progress(step)  # 20 steps in 1.9 s
    assert found.steps._value.get() == 20
    # Steps 1 to 11 in the first second (the sample at step 11), then none due before 2 s.
    assert found.steps_per_second._value.get() == pytest.approx(10.0)


def test_a_resumed_job_counts_the_steps_it_trains_not_those_of_its_checkpoint() -> None:
    found = metrics()
    tracker = StepTracker(found, Clock())
    tracker.progress(501)  # resumed from the checkpoint at step 500
    tracker.progress(502)
    assert found.steps._value.get() == 2


def test_observe_progress_keeps_the_callbacks_and_calls_the_inner_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(observability, "child_metrics", metrics)
    seen: list[tuple[int, int]] = []
    other = lambda: False  # noqa: E731
    wrapped = observability.observe_progress(
        TrainingCallbacks(on_progress=lambda step, total: seen.append((step, total)),
                          should_stop=other))
    assert wrapped.on_progress is not None and wrapped.should_stop is other
    wrapped.on_progress(1, 10)
    assert seen == [(1, 10)]


def test_a_claimed_job_is_named_with_its_attempt_and_counted_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = metrics()
    monkeypatch.setattr(observability, "child_metrics", lambda: found)
    try:
        observability.job_started("job-9", 3)
        job = current_job()
        assert job is not None and (job.job_id, job.attempt) == ("job-9", 3)
        assert found.running._value.get() == 1
        observability._job_ended("succeeded")
        assert found.running._value.get() == 0
        assert found.jobs.labels("succeeded")._value.get() == 1
    finally:
        clear_job()


def test_the_parent_forgets_the_live_gauges_of_dead_processes(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above Linux's default pid_max: no such process
    (tmp_path / f"gauge_livesum_{dead}.db").write_bytes(b"")
    (tmp_path / f"gauge_livesum_{os.getpid()}.db").write_bytes(b"")
    (tmp_path / f"counter_{dead}.db").write_bytes(b"")  # totals stay
    families = list(ParentCollector(tmp_path).collect())
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        f"counter_{dead}.db", f"gauge_livesum_{os.getpid()}.db"]
    assert [family.name for family in families] == ["gradlab_worker_parent_cuda_initialized"]
    assert families[0].samples[0].value == float(observability.parent_cuda_initialized())
