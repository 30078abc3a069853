"""Checking an uploaded .npz before anything is stored: never unpickled, never trusted.

Only plain numeric arrays are read (never unpickled), each array's header is read before its
data, so an object array or a zip bomb is refused without being loaded, and the values are
checked a chunk at a time, so a 200 MB upload never sits whole in the API's memory. Anything
malformed (a member that is not .npy, a compression zipfile cannot read, a truncated array) is
InvalidUpload, never an unhandled error.
"""

from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import numpy as np
from gradlab_contract.shapes import UploadInfo
from numpy.lib import format as npy_format

from service.errors import InvalidUpload

REQUIRED = ("x", "y")
OPTIONAL = ("x_test", "y_test")
FIELD = "file"
# Arrays compress well, but an archive that inflates past this multiple of the upload limit is
# a zip bomb rather than a data set.
MAX_INFLATION = 8
CHUNK_BYTES = 4 * 1024 * 1024  # of one array's values in the API's memory at a time


def inspect_npz(path: Path, *, max_upload_bytes: int) -> UploadInfo:
    """What a job needs to know of the upload; raises InvalidUpload saying what is wrong. Each
    array is read in chunks straight from the archive (values are checked, not kept), so the
    API holds at most one chunk of it in memory."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = _array_names(archive)
            headers = {name: _header(archive, name) for name in names}
            _check_total(headers, max_upload_bytes * MAX_INFLATION)
            info = _check_shapes(headers)
            ranges = [_scan(archive, name, headers[name]) for name in names]
    except zipfile.BadZipFile:
        raise InvalidUpload("the file is not an .npz archive (save it with numpy.savez)",
                            field=FIELD) from None
    except NotImplementedError as error:  # a compression method zipfile cannot read
        raise InvalidUpload(f"unsupported compression: {error} (use numpy.savez or "
                            "savez_compressed)", field=FIELD) from None
    except (ValueError, OSError, EOFError, RuntimeError, zlib.error) as error:
        # RuntimeError: an encrypted member; zlib.error: corrupt compressed data.
        raise InvalidUpload(f"the archive cannot be read as numpy arrays: {error}",
                            field=FIELD) from None
    num_classes = max(high for _, high in filter(None, ranges)) + 1
    if num_classes < 2:
        raise InvalidUpload("y needs at least two classes (labels 0 and 1)", field=FIELD)
    return replace(info, num_classes=num_classes)


@dataclass(frozen=True)
class _Header:
    shape: tuple[int, ...]
    dtype: np.dtype


def _array_names(archive: zipfile.ZipFile) -> list[str]:
    members = archive.namelist()
    strays = sorted(member for member in members if not member.endswith(".npy"))
    if strays:
        raise InvalidUpload(f"members {strays[:5]} are not .npy arrays: save the upload with "
                            "numpy.savez", field=FIELD)
    names = [member.removesuffix(".npy") for member in members]
    unexpected = sorted(set(names) - {*REQUIRED, *OPTIONAL})
    if unexpected or len(set(names)) != len(members):
        raise InvalidUpload(f"unexpected arrays {unexpected[:5]}: an upload holds x, y and "
                            "optionally x_test, y_test", field=FIELD)
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise InvalidUpload(f"missing array(s) {missing}: an upload holds x and y", field=FIELD)
    if ("x_test" in names) != ("y_test" in names):
        raise InvalidUpload("x_test and y_test come together", field=FIELD)
    return names


def _header(archive: zipfile.ZipFile, name: str) -> _Header:
    with archive.open(f"{name}.npy") as member:
        shape, dtype = _read_header(member)
    if dtype.hasobject:
        raise InvalidUpload(f"{name} is an object array; only numeric arrays are accepted "
                            "(pickles are never loaded)", field=FIELD)
    return _Header(tuple(int(n) for n in shape), dtype)


def _check_total(headers: dict[str, _Header], max_bytes: int) -> None:
    total = sum(math.prod(h.shape) * h.dtype.itemsize for h in headers.values())
    if total > max_bytes:
        raise InvalidUpload(f"the arrays hold {total:,} bytes uncompressed; the limit is "
                            f"{max_bytes:,}", field=FIELD)


def _read_header(member: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    version = npy_format.read_magic(member)
    if version == (1, 0):
        shape, _, dtype = npy_format.read_array_header_1_0(member)
    else:
        shape, _, dtype = npy_format.read_array_header_2_0(member)
    return shape, dtype


def _check_shapes(headers: dict[str, _Header]) -> UploadInfo:
    """Everything the headers tell (kinds, shapes, rows); the values are scanned afterwards."""
    x, y = headers["x"], headers["y"]
    _check_features("x", x)
    _check_labels("y", y, rows=x.shape[0])
    if x.shape[0] < 2:
        raise InvalidUpload("x needs at least 2 rows (training and validation)", field=FIELD)
    test_rows = None
    if "x_test" in headers:
        x_test = headers["x_test"]
        _check_features("x_test", x_test)
        if x_test.shape[1:] != x.shape[1:]:
            raise InvalidUpload(f"x_test rows have shape {list(x_test.shape[1:])}, x rows "
                                f"{list(x.shape[1:])}", field=FIELD)
        _check_labels("y_test", headers["y_test"], rows=x_test.shape[0])
        test_rows = x_test.shape[0]
    return UploadInfo(x_shape=x.shape, num_classes=0, test_rows=test_rows)


def _check_features(name: str, x: _Header) -> None:
    if x.dtype.kind not in "biuf":
        raise InvalidUpload(f"{name} must be numeric, not {x.dtype}", field=FIELD)
    if not 2 <= len(x.shape) <= 4:
        raise InvalidUpload(f"{name} must be (rows, features), (rows, h, w) or (rows, c, h, w), "
                            f"not shape {list(x.shape)}", field=FIELD)
    if 0 in x.shape:
        raise InvalidUpload(f"{name} is empty: shape {list(x.shape)}", field=FIELD)


def _check_labels(name: str, y: _Header, *, rows: int) -> None:
    if y.dtype.kind not in "iu" or len(y.shape) != 1:
        raise InvalidUpload(f"{name} must be a 1-D array of integer class labels, not "
                            f"{y.dtype} of shape {list(y.shape)}", field=FIELD)
    if y.shape[0] != rows:
        raise InvalidUpload(f"{name} has {y.shape[0]} labels for {rows} rows", field=FIELD)


def _scan(archive: zipfile.ZipFile, name: str, header: _Header) -> tuple[int, int] | None:
    """Read the array's values in chunks: features must be finite, labels >= 0. Returns the
    labels' (min, max)."""
    labels = name.startswith("y")
    per_chunk = max(1, CHUNK_BYTES // header.dtype.itemsize)
    low, high = None, None
    with archive.open(f"{name}.npy") as member:
        _read_header(member)
        remaining = math.prod(header.shape)
        while remaining:
            count = min(per_chunk, remaining)
            raw = member.read(count * header.dtype.itemsize)
            if len(raw) != count * header.dtype.itemsize:
                raise InvalidUpload(f"{name} is truncated", field=FIELD)
            values = np.frombuffer(raw, dtype=header.dtype)
            remaining -= count
            if labels:
                low = int(values.min()) if low is None else min(low, int(values.min()))
                high = int(values.max()) if high is None else max(high, int(values.max()))
            elif header.dtype.kind == "f" and not np.isfinite(values).all():
                raise InvalidUpload(f"{name} holds NaN or infinite values", field=FIELD)
    if labels and low is not None and low < 0:
        raise InvalidUpload(f"{name} holds negative labels; classes are 0, 1, 2, ...",
                            field=FIELD)
    return None if low is None or high is None else (low, high)
