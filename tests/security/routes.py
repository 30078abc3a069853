"""Every route the app serves, read from the app itself, so tests cover routes added later.

The OpenAPI document lists only routes with include_in_schema (and no mounts), so it is not
enough: a route hidden from the schema, or a mounted app, must be checked too. FastAPI 0.16x
keeps included routers in app.routes as entries that expand through effective_route_contexts();
an entry this walker does not know fails loudly instead of being skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

# What may be reached without a key, and why. Everything else must answer 401 without one.
PUBLIC = {
    "/healthz": "liveness probe for orchestrators",
    "/readyz": "readiness probe for load balancers",
    "/metrics": "Prometheus scrapers carry no key; counts only; restrict at the network level",
    "/openapi.json": "the API's description",
    "/docs": "the API's interactive reference",
    "/docs/oauth2-redirect": "part of the interactive reference",
    "/redoc": "the API's reference",
    "/ui": "static dashboard pages: no data; their API requests carry the user's key",
    "/ui/vendor": "the dashboard's charting library (static files)",
}
PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


@dataclass(frozen=True)
class AppRoute:
    path: str  # the template: /v1/jobs/{job_id}
    methods: frozenset[str]  # empty for a mount (it takes every method)
    mount: bool = False

    @property
    def params(self) -> list[str]:
        return PARAM.findall(self.path)

    def url(self, **values: str) -> str:
        return PARAM.sub(lambda match: values.get(match.group(1), "no-such-id"), self.path)


def app_routes(app: FastAPI) -> list[AppRoute]:
    """Every HTTP route and mount of the app, in the order they match."""
    return list(_walk(app.routes))


def _walk(routes: list[BaseRoute]) -> Iterator[AppRoute]:
    for entry in routes:
        expand = getattr(entry, "effective_route_contexts", None)
        if expand is not None:  # an included router
            for context in expand():
                yield from _one(context.original_route, context.path, context.methods)
        else:
            yield from _one(entry, getattr(entry, "path", None), getattr(entry, "methods", None))


def _one(route: BaseRoute, path: str | None, methods: set[str] | None) -> Iterator[AppRoute]:
    if isinstance(route, Mount):
        yield AppRoute(path or route.path, frozenset(), mount=True)
    elif isinstance(route, WebSocketRoute):
        raise AssertionError(f"websocket route {route.path}: teach the security tests to "
                             "authenticate it")
    elif isinstance(route, Route) or path is not None:
        assert path is not None and methods, f"a route without path or methods: {route!r}"
        yield AppRoute(path, frozenset(methods) - {"HEAD"})
    else:
        raise AssertionError(f"cannot enumerate {route!r}: update tests/security/routes.py")


def documented(app: FastAPI) -> set[tuple[str, str]]:
    """(METHOD, template) of every operation in the OpenAPI document."""
    return {(method.upper(), path) for path, operations in app.openapi()["paths"].items()
            for method in operations}


def operations(app: FastAPI) -> list[tuple[str, AppRoute]]:
    """(method, route) of every route that is not a mount."""
    return [(method, route) for route in app_routes(app) if not route.mount
            for method in sorted(route.methods)]
