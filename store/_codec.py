"""Small encodings shared by the repositories: finite numbers for JSON, and opaque cursors."""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from typing import Any

from store.errors import InvalidInput


def finite_or_none(value: float | None) -> float | None:
    """NaN and +-inf become None: JSON cannot carry them and SQLite stores NaN as NULL anyway."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def json_safe(value: Any) -> Any:
    """A copy of a JSON-like value with every non-finite float replaced by None.

    PostgreSQL's JSONB refuses NaN, and the API sends non-finite numbers as null.
    """
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


def encode_cursor(*parts: str | int) -> str:
    """An opaque page cursor: callers pass it back, they never build or read one."""
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, types: tuple[type, ...]) -> tuple[Any, ...]:
    """Parse a cursor made by encode_cursor with parts of `types`, or raise InvalidInput."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        raise InvalidInput("cursor", "not a cursor returned by this API") from None
    if not isinstance(parts, list) or len(parts) != len(types):
        raise InvalidInput("cursor", "not a cursor returned by this API")
    if not all(type(part) is kind and _storable(part)
               for part, kind in zip(parts, types, strict=True)):
        raise InvalidInput("cursor", "not a cursor returned by this API")
    return tuple(parts)


# A cursor's numbers are steps and depths: INTEGER columns, 32-bit on PostgreSQL.
_MAX_CURSOR_INT = 2**31 - 1


def _storable(part: object) -> bool:
    """A forged cursor must not reach the database with values it refuses (an integer out of
    range, a NUL character): that is a 500 there, and a 422 here."""
    if isinstance(part, int):
        return 0 <= part <= _MAX_CURSOR_INT
    return not (isinstance(part, str) and "\x00" in part)


def check_limit(limit: int, maximum: int, field: str = "limit") -> None:
    if not 1 <= limit <= maximum:
        raise InvalidInput(field, f"must be between 1 and {maximum}, got {limit}")
