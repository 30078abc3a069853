"""`gradlab watch` from the job's event stream, and `gradlab logs ID [-f]`.

watch redraws on each event (status, progress, metrics, findings) instead of polling; when the
stream cannot be had, jobs.stream itself polls, and if even that breaks the caller's poller
takes over from the job's last state.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from gradlab_contract.live import (
    EndEvent,
    Event,
    FindingsEvent,
    JobLogLine,
    MetricsEvent,
    ProgressEvent,
    StatusData,
    StatusEvent,
)
from gradlab_contract.models import Job, Progress

from gradlab_client import _cli_output as text
from gradlab_client._progress import ProgressBar, describe_progress
from gradlab_client.client import Client
from gradlab_client.errors import Timeout, TransportError
from gradlab_client.results import MetricsResult

Poller = Callable[[Client, Job, float], Job]
LOG_EVERY = 10.0  # seconds between progress lines when stderr is a log, not a terminal


def watch_until_done(client: Client, job: Job, interval: float, poll: Poller) -> Job:
    """Draw the job as it is now, then redraw from its events until it ends; return its final
    state. The stream replays the job's history first: what is older than the state already
    drawn is skipped, so the drawing never goes back."""
    bar = ProgressBar(sys.stderr)
    view = _View(job, client.jobs.metrics(job.id))
    last_line, last_status, last_at = "", "", 0.0

    def draw(final: bool = False) -> None:
        nonlocal last_line, last_status, last_at
        line = view.line()
        if bar.enabled:
            bar.update(view.job, view.latest_text())
        elif view.job.status != last_status or (
            line != last_line and (final or time.monotonic() - last_at >= LOG_EVERY)
        ):
            print(line, file=sys.stderr)
            last_line, last_status, last_at = line, view.job.status, time.monotonic()

    try:
        draw()
        for event in client.jobs.stream(job.id, poll_interval=interval):
            if event.is_end:  # the final values, which the last events may not all carry
                view.apply(event)
                view.latest.update(text.latest_values(client.jobs.metrics(job.id)))
                draw(final=True)
                break
            if isinstance(event, FindingsEvent) and event.data.new:
                print(f"diagnosis: {', '.join(event.data.new)}", file=sys.stderr)
            view.apply(event)
            draw()
        else:
            raise TransportError("the event stream ended before the job")
    except (Timeout, TransportError):
        bar.close()
        return poll(client, client.jobs.get(job.id), interval)
    finally:
        bar.close()
    return client.jobs.get(job.id)


_RANK = {"queued": 0, "running": 1}  # then any ending: 2


class _View:
    """The job and its latest metric values as drawn; events only move it forward."""

    def __init__(self, job: Job, metrics: MetricsResult) -> None:
        self.job = job
        self.latest = text.latest_values(metrics)
        self.steps = {series.name: series.steps[-1] for series in metrics if series.steps}

    def line(self) -> str:
        return describe_progress(self.job, self.latest_text())

    def latest_text(self) -> str:
        return text.describe_latest(self.latest)

    def apply(self, event: Event) -> None:
        if isinstance(event, EndEvent):
            event = StatusEvent(type="status", data=StatusData.model_validate(event.data))
        if isinstance(event, StatusEvent) and self._newer(event.data):
            update: dict[str, object] = {"status": event.data.status,
                                         "attempt": event.data.attempt}
            if event.data.progress is not None:
                update["progress"] = event.data.progress
            self.job = self.job.model_copy(update=update)
        elif isinstance(event, ProgressEvent) and event.data.step >= self.job.progress.step:
            progress = Progress(step=event.data.step, total_steps=event.data.total_steps)
            self.job = self.job.model_copy(update={"progress": progress})
        elif isinstance(event, MetricsEvent):
            for name, point in event.data.points.items():
                if point.step >= self.steps.get(name, -1):
                    self.latest[name], self.steps[name] = point.value, point.step

    def _newer(self, status: StatusData) -> bool:
        def rank(name: str, attempt: int) -> tuple[int, int]:
            return attempt, _RANK.get(name, 2)

        return rank(status.status, status.attempt) > rank(self.job.status, self.job.attempt)


def logs(client: Client, args: argparse.Namespace) -> int:
    """Print the job's log lines; with --follow, keep printing new ones until the job ends."""
    after = 0
    while True:
        page = client.jobs.logs(args.id, after=after)
        for line in page.lines:
            print(format_line(line))
        after = page.next_after
        if not args.follow or page.lines:
            if not args.follow:
                return 0
            continue
        if client.jobs.get(args.id).done:
            final = client.jobs.logs(args.id, after=after)  # lines written as it ended
            for line in final.lines:
                print(format_line(line))
            return 0
        time.sleep(args.interval)


def format_line(line: JobLogLine) -> str:
    attempt = f" attempt {line.attempt}" if line.attempt is not None else ""
    return f"{line.at:%Y-%m-%d %H:%M:%S} {line.level:<7}{attempt}: {line.message}"


def logs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the job id")
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing new lines until the job ends")
    parser.add_argument("--interval", type=float, default=1.0,
                        help="seconds between reads with --follow (default 1)")
