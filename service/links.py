"""OpenAPI links: the `id` a create operation returns is the path id of its resource's routes.

Derived from the paths, so routes added later are linked too: `POST /v1/jobs` answering 201
links to every operation under `/v1/jobs/{job_id}`. Clients and test generators (schemathesis'
stateful phase) follow them to reach a real resource instead of guessing ids.
"""

from __future__ import annotations

import re
from typing import Any

_ID = re.compile(r"^/\{(\w+)\}")


def document_links(openapi: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = openapi.get("paths", {})
    for collection, operations in paths.items():
        created = operations.get("post", {}).get("responses", {})
        links = _links_under(collection, paths)
        for status in ("200", "201"):
            if links and status in created:
                created[status].setdefault("links", {}).update(links)
    return openapi


def _links_under(collection: str, paths: dict[str, dict[str, Any]]) -> dict[str, Any]:
    links = {}
    for path, operations in paths.items():
        match = _ID.match(path.removeprefix(collection)) if path.startswith(collection) else None
        if match is None:
            continue
        for method, operation in operations.items():
            pointer = path.replace("~", "~0").replace("/", "~1")
            links[operation.get("operationId") or f"{method}{path}"] = {
                "operationRef": f"#/paths/{pointer}/{method}",
                "parameters": {match.group(1): "$response.body#/id"},
            }
    return links
