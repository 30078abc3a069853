"""The containers' HEALTHCHECK: `python deploy/healthcheck.py api|worker`; exit 0 when healthy.

api     GET /healthz on this container's port (GRADLAB_PORT): the process serves requests.
worker  a Celery `ping` addressed to this container's worker (celery@<hostname>), answered by
        its main process through the broker: the worker is consuming, and the broker is
        reachable. A worker that is training answers too (the pool child trains, the main
        process answers), so a long job does not make it unhealthy.

Standard library for `api`, so the check costs a fraction of a second; `worker` loads the
settings and Celery (about a second), which is why its interval in the Dockerfile is longer.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request

TIMEOUT_SECONDS = 5.0


def api_healthy(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=TIMEOUT_SECONDS) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def worker_healthy(node: str) -> bool:
    from store.settings import Settings
    from taskqueue import make_celery

    settings = Settings()
    app = make_celery(settings.broker_url, queue=settings.task_queue,
                      transport_options=settings.broker_transport_options)
    try:
        replies = app.control.ping(destination=[node], timeout=TIMEOUT_SECONDS)
    except Exception as error:  # the broker is down: unhealthy, and say why
        print(f"ping failed: {error}", file=sys.stderr)
        return False
    finally:
        app.close()
    return any(node in reply for reply in replies)


def main(argv: list[str]) -> int:
    if argv == ["api"]:
        return 0 if api_healthy(int(os.environ.get("GRADLAB_PORT", "8000"))) else 1
    if argv == ["worker"]:
        # Celery names a worker celery@<hostname> unless told otherwise; a container's hostname
        # is its id, so the name is this container's own.
        return 0 if worker_healthy(f"celery@{socket.gethostname()}") else 1
    print("usage: healthcheck.py api|worker", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
