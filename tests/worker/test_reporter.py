"""The reporter's promises, with an in-memory sink standing in for the store's fenced writes
(the real store is exercised by tests/integration and tests/chaos): rows reach the store before
the checkpoint that covers them, a fenced-out attempt stops and writes nothing more, and an
outage loses and duplicates nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from worker.reporter import AttemptFenced, Reporter, TransientStoreError


@dataclass
class MemorySink:
    calls: list[str] = field(default_factory=list)
    rows: list[tuple[int, str, float]] = field(default_factory=list)
    failures_left: int = 0
    fenced: bool = False
    cancel: bool = False

    def _guard(self) -> None:
        if self.fenced:
            raise AttemptFenced("attempt 1 is fenced out")
        if self.failures_left:
            self.failures_left -= 1
            raise TransientStoreError("database unavailable")

    def write_layers(self, layers: list[object]) -> None:
        self._guard()
        self.calls.append("layers")

    def write_metrics(self, rows: list[tuple[int, str, float]]) -> None:
        self._guard()
        self.calls.append(f"metrics:{len(rows)}")
        self.rows.extend(rows)

    def write_snapshots(self, snapshots: list[object]) -> None:
        self._guard()
        self.calls.append("snapshots")

    def record_checkpoint(self, step: int) -> None:
        self._guard()
        self.calls.append(f"checkpoint:{step}")

    def heartbeat(self, step: int) -> bool:
        self._guard()
        return self.cancel


def reporter(sink: MemorySink, **options: float) -> Reporter:
    return Reporter(sink, heartbeat_seconds=options.get("heartbeat", 60), flush_seconds=60)


def test_rows_are_stored_before_the_checkpoint_that_covers_them() -> None:
    sink = MemorySink()
    callbacks = reporter(sink).callbacks()
    for step in range(1, 11):
        callbacks.on_metrics(step, {"train_loss": 1.0 / step})  # type: ignore[misc]
    callbacks.on_checkpoint(10)  # type: ignore[misc]
    assert sink.calls == ["metrics:10", "checkpoint:10"]


def test_an_outage_keeps_the_rows_and_writes_each_once() -> None:
    sink = MemorySink(failures_left=2)
    report = reporter(sink)
    callbacks = report.callbacks()
    for step in range(1, 6):
        callbacks.on_metrics(step, {"train_loss": float(step)})  # type: ignore[misc]
    report.close()  # retries through the outage
    assert sorted(step for step, _, _ in sink.rows) == [1, 2, 3, 4, 5]


def test_a_fenced_out_attempt_stops_and_drops_what_it_held() -> None:
    sink = MemorySink()
    report = reporter(sink)
    callbacks = report.callbacks()
    assert callbacks.should_stop is not None and not callbacks.should_stop()
    sink.fenced = True
    callbacks.on_metrics(1, {"train_loss": 1.0})  # type: ignore[misc]
    callbacks.on_checkpoint(1)  # type: ignore[misc]
    assert report.fenced and callbacks.should_stop()
    sink.fenced = False
    report.close()
    assert sink.rows == []


def test_a_cancel_read_with_the_lease_stops_training() -> None:
    sink = MemorySink(cancel=True)
    report = Reporter(sink, heartbeat_seconds=0.05)
    report.start()
    should_stop = report.callbacks().should_stop
    assert should_stop is not None
    deadline = time.monotonic() + 5
    while not should_stop() and time.monotonic() < deadline:
        time.sleep(0.01)
    report.close()
    assert report.cancel_requested and should_stop()
