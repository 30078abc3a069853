"""What an operator sees of a worker: log lines that name the job, and Prometheus metrics.

Logs: the worker's lines go through store.logs in GRADLAB_LOG_FORMAT (Celery's own logging setup
is replaced through its `setup_logging` signal); while a job trains, its id and attempt are on
every line, the training thread's and the lease thread's alike.

Metrics: jobs train in the pool's child processes, but only the parent lives as long as the
worker, so the children write their numbers to files (prometheus_client's multiprocess mode, in a
folder of this worker process alone, made at start and removed at exit) and the parent serves
them on GRADLAB_WORKER_METRICS_HOST:GRADLAB_WORKER_METRICS_PORT. A pool process keeps its
counters' file when it ends (totals stay right); its live gauges go with it.

    gradlab_worker_steps_total                  training steps done
    gradlab_worker_steps_per_second             the running job's recent rate (0 between jobs)
    gradlab_worker_running_jobs                 jobs training now
    gradlab_worker_jobs_total{outcome}          jobs handled: succeeded, failed, skipped, ...
    gradlab_worker_gpu_memory_{allocated,reserved}_bytes{device}   where a job uses CUDA
    gradlab_worker_parent_cuda_initialized      1 if the parent process initialised CUDA: it
                                                must stay 0 (children forked from such a parent
                                                cannot use the GPU)

Nothing here imports torch: the GPU numbers are read only where a job has already initialised
CUDA (torch.cuda.is_initialized() reads a flag; it never initialises anything).
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery.signals import (
    celeryd_init,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
)

from store.logs import bind_job, clear_job, configure_logging
from store.settings import Settings
from training.types import TrainingCallbacks

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge
    from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Rates and GPU memory are sampled at most this often: the loop reports every step.
SAMPLE_SECONDS = 1.0


def install(settings: Settings) -> None:
    """Set up logs, job hooks and (when a port is set) the metrics server. Call once in the
    worker's main process before the pool forks."""
    _install_logging(settings)
    _install_job_hooks()
    if settings.worker_metrics_port is not None:
        _install_metrics_server(settings.worker_metrics_host, settings.worker_metrics_port)


# -- logs -------------------------------------------------------------------------------------


def _install_logging(settings: Settings) -> None:
    # Now, for what Celery says before it sets logging up (its warnings among them), and again
    # from its setup_logging signal, whose receiver makes Celery leave logging alone.
    configure_logging(settings.log_level, settings.log_format)

    @setup_logging.connect(weak=False)
    def _configure(**_: Any) -> None:
        configure_logging(settings.log_level, settings.log_format)

    if settings.log_format == "json":

        @celeryd_init.connect(weak=False)
        def _quiet(instance: Any, **_: Any) -> None:
            # The start-up banner is plain text printed to stdout, not a log record: in JSON
            # mode it would be the one line a log shipper cannot parse.
            instance.quiet = True


# -- the job a pool process trains ---------------------------------------------------------------


def _install_job_hooks() -> None:
    @task_prerun.connect(weak=False)
    def _before(args: tuple[Any, ...] | None = None, **_: Any) -> None:
        if args:
            bind_job(str(args[0]))  # the attempt is known once the job is claimed: job_started

    @task_postrun.connect(weak=False)
    def _after(retval: Any = None, **_: Any) -> None:
        _job_ended(retval if isinstance(retval, str) else "error")
        clear_job()


def job_started(job_id: str, attempt: int) -> None:
    """The runner claimed the job: name the attempt on log lines, count it as running."""
    bind_job(job_id, attempt)
    metrics = child_metrics()
    metrics.running.set(1)
    metrics.steps_per_second.set(0)


def _job_ended(outcome: str) -> None:
    metrics = child_metrics()
    metrics.running.set(0)
    metrics.steps_per_second.set(0)
    metrics.jobs.labels(outcome).inc()
    _sample_gpu_memory(metrics)  # after the runner released the job's cached memory


def observe_progress(callbacks: TrainingCallbacks) -> TrainingCallbacks:
    """The same callbacks, with steps counted and the rate and GPU memory sampled."""
    tracker = StepTracker(child_metrics())
    inner = callbacks.on_progress

    def on_progress(step: int, total_steps: int) -> None:
        tracker.progress(step)
        if inner is not None:
            inner(step, total_steps)

    return replace(callbacks, on_progress=on_progress)


class StepTracker:
    def __init__(self, metrics: ChildMetrics, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._last_step: int | None = None
        self._sample_step = 0
        self._sample_time = 0.0

    def progress(self, step: int) -> None:
        now = self._clock()
        if self._last_step is None:
            # The loop reports after each step; a resumed job starts past its checkpoint, so
            # the first report is one step, not the steps the checkpoint holds. The rate is
            # measured from here: data loading and model building are not training steps.
            self._last_step = self._sample_step = step
            self._sample_time = now
            self._metrics.steps.inc(1)
            return
        self._metrics.steps.inc(max(0, step - self._last_step))
        self._last_step = step
        if now - self._sample_time >= SAMPLE_SECONDS:
            rate = (step - self._sample_step) / (now - self._sample_time)
            self._metrics.steps_per_second.set(rate)
            self._sample_step, self._sample_time = step, now
            _sample_gpu_memory(self._metrics)


def _sample_gpu_memory(metrics: ChildMetrics) -> None:
    torch = sys.modules.get("torch")  # never imported here: reading must not initialise CUDA
    if torch is None or not torch.cuda.is_initialized():
        return
    index = torch.cuda.current_device()
    device = f"cuda:{index}"
    metrics.gpu_allocated.labels(device).set(torch.cuda.memory_allocated(index))
    metrics.gpu_reserved.labels(device).set(torch.cuda.memory_reserved(index))


@dataclass(frozen=True)
class ChildMetrics:
    steps: Counter
    steps_per_second: Gauge
    running: Gauge
    jobs: Counter
    gpu_allocated: Gauge
    gpu_reserved: Gauge


@cache
def child_metrics() -> ChildMetrics:
    """This process's metrics, made on first use (in a pool child, after the fork). They write
    to the multiprocess folder when the server runs, else to memory nobody reads (cheap)."""
    from prometheus_client import Counter, Gauge

    def gauge(name: str, text: str, labels: tuple[str, ...] = ()) -> Gauge:
        # livesum: the sum over live processes; a process's value goes when it ends.
        return Gauge(name, text, labels, multiprocess_mode="livesum", registry=None)

    return ChildMetrics(
        steps=Counter("gradlab_worker_steps", "Training steps done.", registry=None),
        steps_per_second=gauge("gradlab_worker_steps_per_second", "Recent steps per second."),
        running=gauge("gradlab_worker_running_jobs", "Jobs training now."),
        jobs=Counter("gradlab_worker_jobs", "Jobs handled, by outcome.", ["outcome"],
                     registry=None),
        gpu_allocated=gauge("gradlab_worker_gpu_memory_allocated_bytes",
                            "GPU memory held by tensors.", ("device",)),
        gpu_reserved=gauge("gradlab_worker_gpu_memory_reserved_bytes",
                           "GPU memory reserved by the caching allocator.", ("device",)),
    )


# -- the parent's metrics server ----------------------------------------------------------------


def _install_metrics_server(host: str, port: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="gradlab-worker-metrics-"))
    os.environ[MULTIPROC_ENV] = str(folder)
    from prometheus_client import CollectorRegistry, start_http_server, values
    from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

    # prometheus_client picks file-backed values when it is first imported; it may have been
    # imported before the folder existed, so pick again (the children inherit the choice).
    values.ValueClass = values.get_value_class()
    parent = os.getpid()
    atexit.register(_remove_folder, folder, parent)
    registry = CollectorRegistry()
    registry.register(ParentCollector(folder))  # first: it clears dead processes' gauges
    MultiProcessCollector(registry, path=str(folder))
    server, _thread = start_http_server(port, addr=host, registry=registry)  # fails fast
    log.info("worker metrics on http://%s:%d/metrics", host, port)

    @worker_process_init.connect(weak=False)
    def _drop_inherited_socket(**_: Any) -> None:
        # A pool child inherits the listening socket; only the parent serves it, and a child
        # outliving its parent must not keep the port.
        server.socket.close()

    @worker_process_shutdown.connect(weak=False)
    def _forget_live_gauges(pid: int | None = None, **_: Any) -> None:
        mark_process_dead(pid or os.getpid(), str(folder))


def _remove_folder(folder: Path, owner: int) -> None:
    if os.getpid() == owner:  # a forked child that runs atexit must not remove it
        shutil.rmtree(folder, ignore_errors=True)


class ParentCollector:
    """What the parent knows itself, read at each scrape; and the live gauges of pool
    processes that died without saying so (killed) are dropped, so they stop counting."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from prometheus_client.core import GaugeMetricFamily

        self._forget_dead_processes()
        yield GaugeMetricFamily(
            "gradlab_worker_parent_cuda_initialized",
            "1 if the worker's parent process initialised CUDA (it must not: children forked "
            "from it could not use the GPU).",
            value=float(parent_cuda_initialized()),
        )

    def _forget_dead_processes(self) -> None:
        from prometheus_client.multiprocess import mark_process_dead

        for path in self.folder.glob("gauge_live*_*.db"):
            pid = int(path.stem.rsplit("_", 1)[1])
            if not _alive(pid):
                mark_process_dead(pid, str(self.folder))


def parent_cuda_initialized() -> bool:
    torch = sys.modules.get("torch")  # never imported here: reading must not initialise CUDA
    return bool(torch is not None and torch.cuda.is_initialized())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
