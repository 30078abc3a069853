"""The worker's side of the diagnosis: LiveDiagnosis as a reporter observer (throttled live
writes, the final write, failures that must not cost the job), and a real job run in process
whose final diagnosis lands in the store."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from gradlab_contract.models import Layer, Snapshot
from gradlab_contract.shapes import total_steps
from gradlab_contract.spec import JobSpec

from diagnosis import Finding
from store import findings, jobs, teams
from store.db import Database
from store.errors import StaleAttempt, Unavailable
from store.settings import Settings
from worker import diagnose as live_module
from worker.context import WorkerContext
from worker.diagnose import LiveDiagnosis
from worker.reporter import Reporter
from worker.runner import run_job

SPEC = JobSpec.model_validate({
    "data": {"dataset": "spiral", "options": {"points": 100}},
    "model": {"hidden": [16, 16], "init": {"scheme": "zeros"}},
    "training": {"steps": 100, "batch_size": 32, "eval_every": 20, "device": "cpu"},
    "telemetry": {"snapshot_every": 20, "bins": 8},
})
LAYERS = [Layer(name="fc1", type="linear", shape=[16, 2], parameters=48, depth=0),
          Layer(name="fc2", type="linear", shape=[16, 16], parameters=272, depth=1),
          Layer(name="out", type="linear", shape=[3, 16], parameters=51, depth=2)]


def zero_weights(step: int) -> list[Snapshot]:
    stats = {"unit_std": 0.0, "std": 0.0, "l2": 0.0, "mean": 0.0}
    # No histogram: the diagnosis reads the statistics alone.
    return [Snapshot.model_construct(step=step, kind="weight", layer=layer.name,
                                     depth=layer.depth, stats=stats, histogram=None)
            for layer in LAYERS]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Writes:
    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[tuple[list[str], bool]] = []
        self.error = error

    def __call__(self, found: list[Finding], final: bool) -> None:
        self.calls.append(([f.code for f in found], final))
        if self.error is not None:
            raise self.error


def fed(live: LiveDiagnosis, clock: Clock, steps: list[int]) -> None:
    live.on_layers(LAYERS)
    for step in steps:
        for at in range(step - 19 if step > 1 else 1, step + 1):
            live.on_metrics(at, {"train_loss": math.log(3), "train_accuracy": 0.33})
        live.on_snapshots(step, zero_weights(step))
        clock.now += 2.0


def test_live_writes_are_throttled_and_the_final_one_always_written() -> None:
    writes, clock = Writes(), Clock()
    live = LiveDiagnosis(SPEC, writes, total_steps=100, every_seconds=5.0, clock=clock)
    fed(live, clock, [1, 20, 40, 60, 80, 100])  # 2 s apart: a write at most every 5 s
    assert [final for _, final in writes.calls] == [False, False]  # at 0 s and 6 s
    assert writes.calls[0][0] == ["symmetry"]  # named at the first snapshot step
    found = live.finish("succeeded")
    assert writes.calls[-1] == (["symmetry", "no_learning"], True)
    assert [f.code for f in found] == ["symmetry", "no_learning"]


def test_an_unavailable_store_skips_a_write_and_a_fenced_attempt_stops_writing() -> None:
    clock = Clock()
    flaky = LiveDiagnosis(SPEC, Writes(Unavailable("down")), every_seconds=0, clock=clock)
    fed(flaky, clock, [1, 20])
    assert flaky.finish("succeeded")  # still diagnosed; the next write may succeed
    fenced_writes = Writes(StaleAttempt("attempt 2 owns it"))
    fenced = LiveDiagnosis(SPEC, fenced_writes, every_seconds=0, clock=clock)
    fed(fenced, clock, [1, 20, 40])
    fenced.finish("succeeded")
    assert len(fenced_writes.calls) == 1


def test_a_failing_rule_costs_the_diagnosis_not_the_job(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: Any) -> list[Finding]:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(live_module, "diagnose", broken)
    writes = Writes()
    live = LiveDiagnosis(SPEC, writes)
    with caplog.at_level(logging.ERROR):
        fed(live, Clock(), [1])
        assert live.finish("succeeded") == []
    assert writes.calls == [] and "diagnosis failed" in caplog.text


class RaisingObserver:
    def on_layers(self, layers: list[Layer]) -> None:
        raise RuntimeError("observer bug")

    def on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        raise RuntimeError("observer bug")

    def on_snapshots(self, step: int, snapshots: list[Snapshot]) -> None:
        raise RuntimeError("observer bug")


class NullSink:
    def __init__(self) -> None:
        self.rows: list[tuple[int, str, float]] = []

    def write_layers(self, layers: list[Layer]) -> None: ...
    def write_metrics(self, rows: list[tuple[int, str, float]]) -> None:
        self.rows += rows

    def write_snapshots(self, snapshots: list[Snapshot]) -> None: ...
    def record_checkpoint(self, step: int) -> None: ...
    def heartbeat(self, step: int) -> bool:
        return False


def test_an_observer_that_raises_does_not_stop_the_reporter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = NullSink()
    reporter = Reporter(sink, heartbeat_seconds=60, observers=[RaisingObserver()])
    callbacks = reporter.callbacks()
    with caplog.at_level(logging.ERROR):
        assert callbacks.on_layers and callbacks.on_metrics and callbacks.on_snapshots
        callbacks.on_layers(LAYERS)
        callbacks.on_metrics(1, {"train_loss": 1.0})
        callbacks.on_snapshots(1, zero_weights(1))
    reporter.flush()
    assert sink.rows == [(1, "train_loss", 1.0)]
    assert "training observer RaisingObserver failed" in caplog.text


@pytest.fixture
def db_backend() -> str:
    return "sqlite"


def test_a_job_run_by_the_worker_ends_with_its_final_diagnosis(
    db_settings: Settings, database: Database
) -> None:
    with database.transaction() as session:
        team = teams.create_team(session, name="acme")
        job = jobs.create_job(session, team_id=team.id, spec=SPEC,
                              total_steps=total_steps(SPEC, 240)).job
    db_settings.ensure_directories()
    ctx = WorkerContext(settings=db_settings, database=database, celery=None)  # type: ignore[arg-type]
    assert run_job(ctx, job.id) == "succeeded"
    with database.read() as session:
        stored = findings.get_diagnosis(session, job_id=job.id)
    assert stored is not None and stored.final
    # The cause first; its symptoms kept after it, linked to it, with its onset and remedy.
    assert [f.code for f in stored.findings if f.caused_by is None] == ["symmetry"]
    assert {f.caused_by for f in stored.findings[1:]} == {"symmetry"}
    assert "no_learning" in {f.code for f in stored.findings}
    assert stored.findings[0].onset_step is not None
    assert all(f.remedy == {"model.init.scheme": "kaiming_normal"} for f in stored.findings)
