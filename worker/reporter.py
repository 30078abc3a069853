"""Turns the training core's callbacks into batched, fenced store writes, and keeps the lease.

The training loop calls in on its own thread; a heartbeat thread renews the lease every few
seconds and reads the cancel flag. Writes are buffered and flushed every `flush_seconds`, before
every checkpoint is recorded, and at the end, so a crash loses nothing that a checkpoint covers
(what comes after the last checkpoint is trained again, deterministically, on resume).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from gradlab_contract.models import Layer, Snapshot
from gradlab_contract.retry import Backoff, retrying

from training.types import TrainingCallbacks

log = logging.getLogger(__name__)
# Through a database outage, a store write is tried again every half second (no jitter: one
# worker's writes, not a crowd of clients).
STORE_BACKOFF = Backoff(first=0.5, most=0.5, jitter=False)


class AttemptFenced(Exception):
    """The store refused a write: this attempt is no longer the job's current one."""


class TransientStoreError(Exception):
    """The store is unreachable for now; the write is kept and tried again."""


class JobSink(Protocol):
    """The store writes of one (job, attempt); each is fenced by the attempt number."""

    def write_layers(self, layers: list[Layer]) -> None: ...
    def write_metrics(self, rows: list[tuple[int, str, float]]) -> None: ...
    def write_snapshots(self, snapshots: list[Snapshot]) -> None: ...
    def record_checkpoint(self, step: int) -> None: ...
    def heartbeat(self, step: int) -> bool:
        """Renew the lease and record progress; True when cancelling was asked for."""
        ...


class TrainingObserver(Protocol):
    """Sees what the loop reports, beside the store writes (the live diagnosis). Called on the
    loop's thread; an observer that raises is logged and training goes on."""

    def on_layers(self, layers: list[Layer]) -> None: ...
    def on_metrics(self, step: int, metrics: dict[str, float]) -> None: ...
    def on_snapshots(self, step: int, snapshots: list[Snapshot]) -> None: ...


@dataclass
class _Buffer:
    metrics: list[tuple[int, str, float]] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)

    def take(self) -> tuple[list[tuple[int, str, float]], list[Snapshot]]:
        taken = (self.metrics, self.snapshots)
        self.metrics, self.snapshots = [], []
        return taken

    def put_back(self, metrics: list[tuple[int, str, float]], snapshots: list[Snapshot]) -> None:
        self.metrics[:0] = metrics
        self.snapshots[:0] = snapshots


class Reporter:
    def __init__(
        self,
        sink: JobSink,
        *,
        heartbeat_seconds: float,
        flush_seconds: float = 1.0,
        observers: Sequence[TrainingObserver] = (),
        retry_seconds: float = 30.0,
    ) -> None:
        self._sink = sink
        self._observers = list(observers)
        self._heartbeat_seconds = heartbeat_seconds
        self._flush_seconds = flush_seconds
        # How long a checkpoint's flush and the final flush keep trying through an outage.
        self._retry_seconds = retry_seconds
        self._buffer = _Buffer()
        self._layers: list[Layer] | None = None  # written with the next flush if refused
        self._lock = threading.Lock()  # the buffer is filled by the loop, flushed by either thread
        self._last_flush = time.monotonic()
        self._step = 0
        self._stop = (
            threading.Event()
        )  # training should stop: cancelled, fenced out or shutting down
        self._closed = threading.Event()
        self.cancel_requested = False
        self.fenced = False
        self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="lease", daemon=True)

    def callbacks(self) -> TrainingCallbacks:
        return TrainingCallbacks(
            on_layers=self._on_layers,
            on_metrics=self._on_metrics,
            on_snapshots=self._on_snapshots,
            on_progress=self._on_progress,
            on_checkpoint=self._on_checkpoint,
            should_stop=self._stop.is_set,
        )

    def start(self) -> None:
        self._heartbeat.start()

    def request_stop(self) -> None:
        """Ask the loop to checkpoint and stop (worker shutdown)."""
        self._stop.set()

    def close(self) -> None:
        """Write everything still buffered, then stop the heartbeat.

        Raises AttemptFenced when the store refuses the rows, TransientStoreError when it stayed
        unreachable for retry_seconds. The lease is renewed while the rows are retried, so an
        outage shorter than the lease keeps the job; after a longer one the reaper may give it
        to another attempt, and the flush is then refused (nothing is written twice).
        """
        try:
            self.flush(retry_for=self._retry_seconds)
        finally:
            self._closed.set()
            if self._heartbeat.is_alive():
                self._heartbeat.join(timeout=self._heartbeat_seconds + 5)

    # -- training callbacks (the loop's thread) --------------------------------------------------

    def _on_layers(self, layers: list[Layer]) -> None:
        self._notify(lambda observer: observer.on_layers(layers))
        with self._lock:
            self._layers = layers
        self._guarded(self.flush)

    def _on_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self._notify(lambda observer: observer.on_metrics(step, metrics))
        with self._lock:
            self._buffer.metrics.extend((step, name, value) for name, value in metrics.items())
        if time.monotonic() - self._last_flush >= self._flush_seconds:
            self._guarded(self.flush)

    def _on_snapshots(self, step: int, snapshots: list[Snapshot]) -> None:
        with self._lock:
            self._buffer.snapshots.extend(snapshots)
        self._notify(lambda observer: observer.on_snapshots(step, snapshots))

    def _on_progress(self, step: int, total_steps: int) -> None:
        self._step = step

    def _on_checkpoint(self, step: int) -> None:
        # A checkpoint counts only once every row up to its step is stored: on resume, rows past
        # the recorded step are deleted and trained again.
        def flush_then_record() -> None:
            self.flush(retry_for=self._retry_seconds)
            self._sink.record_checkpoint(step)

        self._guarded(flush_then_record)

    def _notify(self, call: Callable[[TrainingObserver], None]) -> None:
        for observer in self._observers:
            try:
                call(observer)
            except Exception:  # an observer's bug must not stop training
                log.exception("training observer %s failed", type(observer).__name__)

    # -- writes --------------------------------------------------------------------------------

    def flush(self, retry_for: float = 0.0) -> None:
        """Write the buffered layers, metrics and snapshots; through an outage, try again every
        half second for `retry_for` seconds, then keep the rows and raise TransientStoreError.
        A write that reached the store before its connection broke is sent again: the store
        ignores a replayed row, so nothing is lost and nothing is doubled."""
        with self._lock:
            metrics, snapshots = self._buffer.take()
            if not metrics and not snapshots and self._layers is None:
                return

            def write() -> None:
                nonlocal metrics
                if self._layers is not None:
                    self._sink.write_layers(self._layers)
                    self._layers = None
                if metrics:
                    self._sink.write_metrics(metrics)
                    metrics = []
                if snapshots:
                    self._sink.write_snapshots(snapshots)

            def warn_once(retry: int, error: BaseException) -> None:
                if retry == 0:
                    log.warning("store unavailable; retrying the write of %d metric rows "
                                "for up to %.0f s", len(metrics), retry_for)

            try:
                for attempt in retrying(
                    when=lambda error: isinstance(error, TransientStoreError),
                    wait=lambda retry, error: STORE_BACKOFF.delay(retry),
                    seconds=retry_for, on_retry=warn_once,
                ):
                    with attempt:
                        write()
            except TransientStoreError:
                self._buffer.put_back(metrics, snapshots)
                # The loop tries again after flush_seconds, not at its very next step.
                self._last_flush = time.monotonic()
                raise
            self._last_flush = time.monotonic()

    def _guarded(self, write: Callable[[], object]) -> None:
        """Run a write from the loop; a fenced-out attempt stops training, an outage waits."""
        try:
            write()
        except AttemptFenced:
            self._fence()
        except TransientStoreError:
            log.warning(
                "store unavailable; keeping %d buffered metric rows", len(self._buffer.metrics)
            )

    def _fence(self) -> None:
        self.fenced = True
        self._stop.set()
        with self._lock:
            self._buffer.take()  # another attempt owns the job now: these rows must not be written
            self._layers = None

    # -- lease (the heartbeat thread) ------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        while not self._closed.wait(self._heartbeat_seconds):
            try:
                if self._sink.heartbeat(self._step):
                    self.cancel_requested = True
                    self._stop.set()
            except AttemptFenced:
                self._fence()
                return
            except TransientStoreError:
                log.warning("could not renew the lease; will try again")
