"""`client.studies`: run a grid (or random search) of job variants and compare them."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

from gradlab_contract.live import Event
from gradlab_contract.models import (
    Study,
    StudyComparison,
    StudyCreate,
    StudyPage,
    StudyTemplate,
)

from gradlab_client._http import HTTP
from gradlab_client._poll import poll_until_done
from gradlab_client._stream import follow
from gradlab_client.results import Pager

TemplateList = list[StudyTemplate]  # module-level: inside the class `list` is the method


class Studies:
    def __init__(self, http: HTTP) -> None:
        self._http = http

    def create(
        self, study: StudyCreate | Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Study:
        """Create a study: `{"base": spec, "grid": {"model.activation": [...]}, "seeds": [...]}`,
        `{"base": spec, "search": {"n": 8, "space": {...}}}` or `{"template": name}`. Every
        variant is validated first; a refusal (ValidationError) names the grid value and
        creates nothing.

        With an idempotency key the call is retried on transient failures, and sending the same
        body with the same key again returns the study created the first time, with no new jobs
        (a different body with that key raises Conflict). Without a key it is sent exactly once.
        """
        body = (study.model_dump(mode="json", exclude_none=True)
                if isinstance(study, StudyCreate) else dict(study))
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        response = self._http.request("POST", "/v1/studies", json=body, headers=headers,
                                      retry=idempotency_key is not None)
        return Study.model_validate_json(response.content)

    def get(self, study_id: str) -> Study:
        response = self._http.request("GET", _path(study_id), retry=True)
        return Study.model_validate_json(response.content)

    def list(self, *, page_size: int = 50) -> Iterator[Study]:
        """Every study of the team, newest first, fetched a page at a time."""

        def fetch(cursor: str | None) -> tuple[Sequence[Study], str | None]:
            params = {"limit": page_size, "cursor": cursor}
            response = self._http.request("GET", "/v1/studies", params=params, retry=True)
            page = StudyPage.model_validate_json(response.content)
            return page.items, page.next_cursor

        return iter(Pager(fetch))

    def cancel(self, study_id: str) -> Study:
        """Cancel the study's queued jobs and stop its running ones. Safe to repeat."""
        response = self._http.request("POST", f"{_path(study_id)}/cancel", retry=True)
        return Study.model_validate_json(response.content)

    def compare(
        self, study_id: str, *, sort: str | None = None, order: Literal["asc", "desc"] = "asc",
        target_metric: str | None = None, target_value: float | None = None,
    ) -> StudyComparison:
        """A row per variant: its values, the mean and spread over seeds of the final and best
        losses and accuracies, the steps to reach the target (if given), its diagnosis codes."""
        params = {"sort": sort, "order": order, "target_metric": target_metric,
                  "target_value": target_value}
        response = self._http.request("GET", f"{_path(study_id)}/compare", params=params,
                                      retry=True)
        return StudyComparison.model_validate_json(response.content)

    def stream(
        self, study_id: str, *, last_event_id: int | None = None, timeout: float | None = None
    ) -> Iterator[Event]:
        """The events of every job of the study (each with its job_id), then a StudyEvent
        when the last one has ended, then EndEvent; a dropped stream is resumed. Raises Timeout
        after `timeout` seconds, or when no stream can be had (use wait() then)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        return follow(self._http, f"{_path(study_id)}/events", last_event_id=last_event_id,
                      deadline=deadline, poll=None, poll_interval=1.0)

    def templates(self) -> TemplateList:
        response = self._http.request("GET", "/v1/studies/templates", retry=True)
        return [StudyTemplate.model_validate(item) for item in response.json()]

    def wait(self, study_id: str, *, timeout: float | None = None,
             poll_interval: float = 2.0) -> Study:
        """Poll until every job of the study has ended; Timeout after `timeout` seconds."""
        return poll_until_done(lambda: self.get(study_id), lambda study: study.done,
                               lambda _: f"study {study_id} is still running",
                               timeout=timeout, poll_interval=poll_interval)

def _path(study_id: str) -> str:
    # Quoted so an id read from a file or a user cannot step into another route ("../").
    return f"/v1/studies/{quote(study_id, safe='')}"
