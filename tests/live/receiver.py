"""A real HTTP receiver for webhook tests: a thread serving 127.0.0.1 that verifies each
delivery with the Standard Webhooks library's own verification, as a user's receiver would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Receiver:
    url: str
    secret: str | None = None
    statuses: list[int] = field(default_factory=list)  # answers to give, in order; then 204
    received: list[dict[str, Any]] = field(default_factory=list)  # verified payloads
    rejected: list[str] = field(default_factory=list)  # why a delivery failed verification
    arrived: threading.Event = field(default_factory=threading.Event)
    hits: int = 0


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            state.hits += 1
            status = state.statuses.pop(0) if state.statuses else 204
            if status < 300:
                try:
                    assert state.secret is not None
                    payload = Webhook(state.secret).verify(body, dict(self.headers.items()))
                    state.received.append(payload)
                    state.arrived.set()
                except WebhookVerificationError as error:
                    state.rejected.append(str(error))
                    status = 400
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def dumps(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))
