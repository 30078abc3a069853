"""The /ui dashboard: static pages that read the authenticated API from the browser.

The pages hold no data and no secret, so they are served without a key; every request they make
carries the key the user typed (kept in sessionStorage). The charting library is not in the
repository: `npm ci` installs it into node_modules, and /ui/vendor serves its dist folder. Mounts
are neither API routes nor part of the OpenAPI document, so the route-auth test is unaffected.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

PAGES = Path(__file__).parent / "static"
# node_modules beside pyproject.toml, where `npm ci` (make ui) puts it.
VENDOR = Path(__file__).resolve().parents[2] / "node_modules" / "echarts" / "dist"
# No inline scripts, nothing from another origin: a page that holds an API key in
# sessionStorage must not run code it did not ship. ECharts sets inline styles on its elements.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")


class _Assets(StaticFiles):
    """StaticFiles with the page's security headers on every answer."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        # Pages change with each release and are small; revalidating keeps them fresh.
        response.headers["Cache-Control"] = "no-cache"
        return response


_MISSING_VENDOR = PlainTextResponse(
    "The dashboard's charting library is not installed: run `npm ci` (or `make ui`).", 404)


def mount_ui(app: FastAPI, *, vendor: Path = VENDOR) -> None:
    """Serve the dashboard at /ui/ and its charting library at /ui/vendor/.

    A deployment without node_modules (the API image) still starts: /ui/vendor then answers
    404 saying to run `npm ci`, and the page keeps its static note saying the same.
    """
    # The more specific mount first: /ui would otherwise swallow /ui/vendor.
    assets = _Assets(directory=vendor) if vendor.is_dir() else _MISSING_VENDOR
    app.mount("/ui/vendor", assets, name="ui-vendor")
    app.mount("/ui", _Assets(directory=PAGES, html=True), name="ui")
