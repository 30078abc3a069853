"""/ui is served by the API without a key (pages hold no data), stays out of the OpenAPI document,
carries a strict Content-Security-Policy, and serves the charting library from node_modules."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.ui import VENDOR, mount_ui


def test_the_pages_need_no_key_and_are_not_api_routes(client: TestClient, app: FastAPI) -> None:
    response = client.get("/ui/")
    assert response.status_code == 200
    assert '<script type="module" src="app.js">' in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert not [path for path in app.openapi()["paths"] if path.startswith("/ui")]
    assert client.get("/ui", follow_redirects=False).status_code in (301, 307, 308)
    # What a browser shows when the scripts cannot load (no node_modules on the server).
    assert "npm ci" in response.text


def test_the_pages_load_nothing_from_another_origin() -> None:
    pages = Path(__file__).resolve().parents[2] / "service" / "ui" / "static"
    for page in pages.iterdir():
        text = page.read_text()
        assert "http://" not in text and "https://" not in text, page.name


def test_the_charting_library_comes_from_node_modules(client: TestClient) -> None:
    response = client.get("/ui/vendor/echarts.esm.min.js")
    if not VENDOR.is_dir():  # no `npm ci` here: the page must say so, not fail obscurely
        assert response.status_code == 404 and "npm ci" in response.text
        return
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]


def test_without_node_modules_the_vendor_path_says_what_to_run(tmp_path: Path) -> None:
    app = FastAPI()
    mount_ui(app, vendor=tmp_path / "missing")
    with TestClient(app) as client:
        response = client.get("/ui/vendor/echarts.esm.min.js")
    assert response.status_code == 404
    assert "npm ci" in response.text
