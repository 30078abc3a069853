"""`client.jobs`: submit, list, follow and cancel training jobs; read their metrics, layers and
per-layer distribution snapshots; read their diagnosis and submit its remedies."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from gradlab_contract.live import Event, JobLogPage
from gradlab_contract.models import (
    Artifact,
    Diagnosis,
    Heal,
    Job,
    JobPage,
    JobStatus,
    Layer,
    MetricsResponse,
    Snapshot,
    SnapshotKind,
    SnapshotPage,
)
from gradlab_contract.spec import JobSpec

from gradlab_client import artifacts as _artifacts
from gradlab_client._http import HTTP
from gradlab_client._progress import ProgressBar
from gradlab_client._stream import follow
from gradlab_client.errors import Timeout
from gradlab_client.results import MetricsResult, Pager, SnapshotIterator

if TYPE_CHECKING:
    import torch

LayerList = list[Layer]  # module-level: inside the class `list` is the method of that name
ArtifactList = list[Artifact]


class Jobs:
    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(
        self, spec: JobSpec | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Job:
        """Submit a job. A plain mapping is sent as it is and validated by the service, whose
        422 names the offending field (ValidationError.field and .errors).

        With an idempotency key the call is retried on transient failures, and sending the same
        spec with the same key again returns the job created the first time (a different spec
        with that key raises Conflict). Without a key it is sent exactly once.
        """
        body = spec.model_dump(mode="json") if isinstance(spec, JobSpec) else dict(spec)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = self._http.request(
            "POST", "/v1/jobs", json=body, headers=headers, retry=idempotency_key is not None
        )
        return Job.model_validate_json(response.content)

    def get(self, job_id: str) -> Job:
        response = self._http.request("GET", _job_path(job_id), retry=True)
        return Job.model_validate_json(response.content)

    def list(
        self, *, status: JobStatus | None = None, name: str | None = None, page_size: int = 50
    ) -> Iterator[Job]:
        """Every job of the team matching the filters, newest first, fetched a page at a time."""

        def fetch(cursor: str | None) -> tuple[Sequence[Job], str | None]:
            params = {"status": status, "name": name, "limit": page_size, "cursor": cursor}
            response = self._http.request("GET", "/v1/jobs", params=params, retry=True)
            page = JobPage.model_validate_json(response.content)
            return page.items, page.next_cursor

        return iter(Pager(fetch))

    def cancel(self, job_id: str) -> Job:
        """Ask a job to stop. Cancelling is cooperative: the job becomes `cancelled` when its
        worker next checks in; use wait() to see it happen. Safe to repeat, so it is retried."""
        response = self._http.request("POST", f"{_job_path(job_id)}/cancel", retry=True)
        return Job.model_validate_json(response.content)

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        progress: bool = True,
    ) -> Job:
        """Poll until the job is succeeded, failed, cancelled or diverged, and return it.

        A progress bar is drawn on stderr when `progress` and stderr is a terminal. Raises
        Timeout (with the last job state seen) once `timeout` seconds have passed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = ProgressBar(enabled=progress)
        try:
            while True:
                job = self.get(job_id)
                bar.update(job)
                if job.done:
                    return job
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise Timeout(
                        f"job {job_id} is still {job.status} after {timeout:g}s", job=job
                    )
                time.sleep(poll_interval if left is None else min(poll_interval, left))
        finally:
            bar.close()

    def stream(
        self, job_id: str, *, last_event_id: int | None = None, timeout: float | None = None,
        poll_interval: float = 1.0,
    ) -> Iterator[Event]:
        """The job's events as they happen, from submission (or after `last_event_id`) to its
        `end`: StatusEvent, ProgressEvent, MetricsEvent, FindingsEvent, then EndEvent.

            for event in client.jobs.stream(job.id):
                if isinstance(event, MetricsEvent):
                    print(event.data.points["train_loss"].value)

        A dropped stream is resumed where it stopped; where no stream can be had, the job is
        polled every `poll_interval` seconds (status and progress events, then the end).
        Raises Timeout after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        return follow(self._http, f"{_job_path(job_id)}/events", last_event_id=last_event_id,
                      deadline=deadline, poll=lambda: self.get(job_id),
                      poll_interval=poll_interval)

    def logs(self, job_id: str, *, after: int = 0, limit: int = 500) -> JobLogPage:
        """The worker's lines about the job after line id `after` (pass the page's next_after
        to follow): claims, data set, device, warnings, errors with their traceback."""
        params = {"after": after, "limit": limit}
        response = self._http.request("GET", f"{_job_path(job_id)}/logs", params=params,
                                      retry=True)
        return JobLogPage.model_validate_json(response.content)

    def metrics(
        self,
        job_id: str,
        *,
        names: Sequence[str] | str | None = None,
        max_points: int | None = 1000,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> MetricsResult:
        """The job's metric series (all of them, or `names`), each downsampled by the service to
        at most `max_points` points in a way that keeps spikes."""
        joined = names if isinstance(names, str) or names is None else ",".join(names)
        params = {
            "names": joined or None,
            "max_points": max_points,
            "start_step": start_step,
            "end_step": end_step,
        }
        path = f"{_job_path(job_id)}/metrics"
        response = self._http.request("GET", path, params=params, retry=True)
        return MetricsResult(MetricsResponse.model_validate_json(response.content).series)

    def layers(self, job_id: str) -> LayerList:
        """The layers the job's model is built of, in order (what `layer=` of snapshots takes)."""
        response = self._http.request("GET", f"{_job_path(job_id)}/layers", retry=True)
        return [Layer.model_validate(item) for item in response.json()]

    def snapshots(
        self,
        job_id: str,
        *,
        kind: SnapshotKind | None = None,
        layer: str | None = None,
        step: int | None = None,
        start_step: int | None = None,
        end_step: int | None = None,
        page_size: int = 100,
    ) -> SnapshotIterator:
        """Per-layer distribution snapshots (statistics and histograms), fetched page by page
        as the result is iterated; `.to_pandas()` reads them all into a DataFrame."""
        base = {
            "kind": kind, "layer": layer, "step": step,
            "start_step": start_step, "end_step": end_step, "limit": page_size,
        }

        def fetch(cursor: str | None) -> tuple[Sequence[Snapshot], str | None]:
            params = {**base, "cursor": cursor}
            path = f"{_job_path(job_id)}/snapshots"
            response = self._http.request("GET", path, params=params, retry=True)
            page = SnapshotPage.model_validate_json(response.content)
            return page.items, page.next_cursor

        return SnapshotIterator(fetch)

    def diagnosis(self, job_id: str) -> Diagnosis:
        """What went wrong in the job: findings (code, severity, the layer and step, the
        evidence, a suggestion and a remedy), most severe first. Updated while the job runs;
        `final` once it has ended."""
        response = self._http.request("GET", f"{_job_path(job_id)}/diagnosis", retry=True)
        return Diagnosis.model_validate_json(response.content)

    def remedy(
        self, job_id: str, *, codes: Sequence[str], idempotency_key: str | None = None
    ) -> Job:
        """Submit the job again with the remedies of its findings `codes` applied (in order);
        the new job's parent_id is `job_id`. Retried on transient failures only with an
        idempotency key, as create() is."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = self._http.request(
            "POST", f"{_job_path(job_id)}/remedy", json={"codes": list(codes)}, headers=headers,
            retry=idempotency_key is not None,
        )
        return Job.model_validate_json(response.content)

    def delete(self, job_id: str) -> None:
        """Delete a finished job with its metrics, snapshots, diagnosis and artifacts (a queued
        or running one raises Conflict: cancel it first). Not retried: a repeat would be 404."""
        self._http.request("DELETE", _job_path(job_id), retry=False)

    def artifacts(self, job_id: str) -> ArtifactList:
        """The files the job keeps (weights, TorchScript and ONNX exports, model card) with
        their size and sha256; empty until it has succeeded."""
        response = self._http.request("GET", f"{_job_path(job_id)}/artifacts", retry=True)
        return [Artifact.model_validate(item) for item in response.json()]

    def download(self, job_id: str, *, name: str, path: str | Path = ".") -> Path:
        """Download artifact `name` to `path` (a file, or a folder to put it in) and return
        where it is. The sha256 is checked; on a mismatch nothing is kept
        (artifacts.ChecksumMismatch)."""
        found = {artifact.name: artifact for artifact in self.artifacts(job_id)}
        if name not in found:  # the service's 404 says so (NotFound, naming the artifact)
            self._http.request("GET", _artifacts.artifact_path(_job_path(job_id), name),
                               retry=True)
            raise AssertionError(f"{name} is not listed, yet served")
        return _artifacts.download(self._http, _job_path(job_id), found[name], Path(path))

    def model_card(self, job_id: str) -> dict[str, Any]:
        """The job's model card: spec, layers, summary, diagnosis and preprocessing."""
        with tempfile.TemporaryDirectory() as folder:
            return _artifacts.read_card(self.download(job_id, name=_artifacts.CARD, path=folder))

    def load_model(self, job_id: str, *, which: _artifacts.Which = "best") -> torch.nn.Module:
        """The job's trained model, ready to run (needs `gradlab-client[torch]`): a
        torch.nn.Module in eval mode that takes raw rows, applies the job's normalization and
        returns logits. `which` is "best" (the evaluation with the best validation accuracy)
        or "final", as the job's `training.keep` kept them."""
        name = f"model-{which}.pt"
        with tempfile.TemporaryDirectory() as folder:
            path = self.download(job_id, name=name, path=folder)
            return _artifacts.load_model({name: path}, which)

    def heal(self, job_id: str, *, max_rounds: int = 3) -> Heal:
        """Heal the job: rounds of diagnose -> remedy -> train until a job is healthy or
        `max_rounds` remedy jobs have run (follow it with client.heals.wait(heal.id)). A job has
        one heal, so repeating the call returns it: retried safely."""
        response = self._http.request("POST", f"{_job_path(job_id)}/heal",
                                      json={"max_rounds": max_rounds}, retry=True)
        return Heal.model_validate_json(response.content)


def _job_path(job_id: str) -> str:
    # Quoted so an id read from a file or a user cannot step into another route ("../").
    return f"/v1/jobs/{quote(job_id, safe='')}"
