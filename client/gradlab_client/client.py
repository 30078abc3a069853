"""`Client`: the entry point of the SDK.

    from gradlab_client import Client

    with Client() as client:  # GRADLAB_URL and GRADLAB_API_KEY from the environment
        job = client.jobs.create({"data": {"dataset": "spiral"}, "training": {"steps": 200}})
        job = client.jobs.wait(job.id)
"""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version
from types import TracebackType
from typing import Self

import httpx
from gradlab_contract.models import Catalog, StorageUsage

from gradlab_client._http import HTTP, RetryPolicy
from gradlab_client.datasets import Datasets
from gradlab_client.heals import Heals
from gradlab_client.jobs import Jobs
from gradlab_client.studies import Studies
from gradlab_client.webhooks import Webhooks

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "GRADLAB_URL"
API_KEY_ENV = "GRADLAB_API_KEY"


def _package_version() -> str:
    try:
        return version("gradlab-client")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


__version__ = _package_version()


class Client:
    """A connection to one gradlab service, authenticated as one team's API key.

    `base_url` and `api_key` default to $GRADLAB_URL (else http://127.0.0.1:8000) and
    $GRADLAB_API_KEY. Pass `http_client` to send through your own httpx.Client (a proxy, custom
    TLS, or FastAPI's TestClient in tests); it is then yours to close, and its own timeout applies.
    `max_retries` bounds the retries of idempotent calls (reads, cancel, keyed creates).
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        http_client: httpx.Client | None = None,
        max_retries: int = 3,
    ) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = base_url or os.environ.get(URL_ENV) or DEFAULT_URL
        self._http = HTTP(
            base_url=self.base_url,
            api_key=api_key if api_key is not None else os.environ.get(API_KEY_ENV),
            timeout=timeout,
            http_client=http_client,
            policy=RetryPolicy(max_retries=max_retries),
            user_agent=f"gradlab-client/{__version__}",
        )
        self.jobs = Jobs(self._http)
        self.datasets = Datasets(self._http)
        self.studies = Studies(self._http)
        self.heals = Heals(self._http)
        self.webhooks = Webhooks(self._http)

    def catalog(self) -> Catalog:
        """Every value the spec's enums allow, with a description of each, and the service's
        limits (maximum parameters, steps, ...)."""
        response = self._http.request("GET", "/v1/catalog", retry=True)
        return Catalog.model_validate_json(response.content)

    def usage(self) -> StorageUsage:
        """The bytes your team keeps (artifacts and uploads) and its quota."""
        response = self._http.request("GET", "/v1/usage", retry=True)
        return StorageUsage.model_validate_json(response.content)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        # Never the key: a repr ends up in logs.
        return f"Client(base_url={self.base_url!r})"
