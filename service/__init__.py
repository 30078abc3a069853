"""gradlab's HTTP API (FastAPI). Build it with ``create_app(settings)``; it never imports torch."""

from service.app import create_app

__all__ = ["create_app"]
