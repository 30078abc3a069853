"""Reading an upload's multipart body ourselves, after the caller is known and within its caps.

FastAPI parses a multipart body (spooling files to temporary files) before any dependency runs,
so a route with File() parameters reads up to the whole upload from a caller it has not yet
authenticated or rate-limited. The upload route therefore declares no body parameters: its
dependencies answer 401 and 429 from the headers (and service.body_limit a declared size over
the cap with 413), and only then does this module read request.stream(), writing the file part
straight into its destination and stopping with 413 the moment it passes the cap.

Hand-written around python-multipart's push parser (what Starlette's form parser uses) because
Starlette's form() spools into temporary files and knows no per-file destination or cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.errors import InvalidUpload, PayloadTooLarge

FILE_FIELD = "file"
TEXT_FIELDS = {"name": 200, "description": 2000}  # characters
MAX_TEXT_BYTES = 4 * max(TEXT_FIELDS.values())  # UTF-8 takes at most 4 bytes a character
MAX_HEADER_BYTES = 16 * 1024  # all part headers together


@dataclass
class ReceivedForm:
    size: int = 0  # bytes of the file part
    filename: str = ""
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Part:
    name: str = ""
    filename: str | None = None
    text: bytearray = field(default_factory=bytearray)


class _Receiver:
    """The parser's callbacks: where each part's bytes go, and the caps on them."""

    def __init__(self, out: IO[bytes], max_file_bytes: int) -> None:
        self.out, self.max_file_bytes = out, max_file_bytes
        self.form = ReceivedForm()
        self.part = _Part()
        self.header_field, self.header_value = bytearray(), bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.header_bytes = 0
        self.files = 0

    def on_part_begin(self) -> None:
        self.part, self.headers = _Part(), {}

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field, self.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.headers.get(b"content-disposition", b""))
        self.part.name = options.get(b"name", b"").decode("latin-1")
        filename = options.get(b"filename")
        self.part.filename = None if filename is None else filename.decode("utf-8", "replace")
        if self.part.name == FILE_FIELD:
            self.files += 1
            if self.files > 1 or self.part.filename is None:
                raise InvalidUpload("send one file, as the form part `file`", field=FILE_FIELD)
            self.form.filename = self.part.filename
        elif self.part.name not in TEXT_FIELDS or self.part.name in self.form.fields:
            raise InvalidUpload(f"unexpected form part {self.part.name[:50]!r}: send `file`, and "
                                "optionally `name` and `description`", field=FILE_FIELD)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.part.name != FILE_FIELD:
            self.part.text += data[start:end]
            if len(self.part.text) > MAX_TEXT_BYTES:
                raise InvalidUpload("too long", field=self.part.name)
            return
        self.form.size += end - start
        if self.form.size > self.max_file_bytes:
            raise PayloadTooLarge(f"the file is larger than the limit of "
                                  f"{self.max_file_bytes:,} bytes", field=FILE_FIELD)
        self.out.write(data[start:end])

    def on_part_end(self) -> None:
        if self.part.name in TEXT_FIELDS:
            self.form.fields[self.part.name] = _text(self.part.name, bytes(self.part.text))

    def _count_header(self, size: int) -> None:
        self.header_bytes += size
        if self.header_bytes > MAX_HEADER_BYTES:
            raise InvalidUpload("the form's part headers are too large", field=FILE_FIELD)


def _text(name: str, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidUpload("not UTF-8 text", field=name) from None
    if len(text) > TEXT_FIELDS[name]:
        raise InvalidUpload(f"at most {TEXT_FIELDS[name]} characters", field=name)
    if "\x00" in text:  # PostgreSQL cannot store a NUL in text
        raise InvalidUpload("must not contain NUL characters", field=name)
    return text


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary of the Content-Type, or InvalidUpload saying what to send."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidUpload("send the data set as multipart/form-data with a `file` part",
                            field=FILE_FIELD)
    return boundary


async def receive_form(
    chunks: AsyncIterator[bytes], *, boundary: bytes, target: Path, max_file_bytes: int
) -> ReceivedForm:
    """Parse the body from `chunks`, writing the file part into `target` (created, never
    overwritten) and keeping the text parts; raises PayloadTooLarge or InvalidUpload."""
    with target.open("xb") as out:
        receiver = _Receiver(out, max_file_bytes)
        callbacks = {name: getattr(receiver, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end")}
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        try:
            async for chunk in chunks:
                parser.write(chunk)
            parser.finalize()
        except MultipartParseError as error:
            raise InvalidUpload(f"the multipart body is malformed: {error}",
                                field=FILE_FIELD) from None
    if receiver.files != 1:
        raise InvalidUpload("send the data set as the form part `file`", field=FILE_FIELD)
    return receiver.form
