"""Checking an uploaded .npz before anything is stored: never unpickled, never trusted.

Only plain numeric arrays are read (``allow_pickle=False``), and each array's header is read
before its data, so an object array or a zip bomb is refused without being loaded.
"""

from __future__ import annotations

import zipfile
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


def inspect_npz(path: Path, *, max_upload_bytes: int) -> UploadInfo:
    """What a job needs to know of the upload; raises InvalidUpload saying what is wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = _array_names(archive)
            _check_headers(archive, names, max_upload_bytes * MAX_INFLATION)
        with np.load(path, allow_pickle=False) as arrays:
            return _check_arrays({name: arrays[name] for name in names})
    except zipfile.BadZipFile:
        raise InvalidUpload("the file is not an .npz archive (save it with numpy.savez)",
                            field=FIELD) from None
    except (ValueError, OSError, EOFError) as error:
        raise InvalidUpload(f"the archive cannot be read as numpy arrays: {error}",
                            field=FIELD) from None


def _array_names(archive: zipfile.ZipFile) -> list[str]:
    members = archive.namelist()
    names = [member.removesuffix(".npy") for member in members]
    unexpected = sorted(set(names) - {*REQUIRED, *OPTIONAL})
    if unexpected or len(set(names)) != len(members):
        raise InvalidUpload(f"unexpected arrays {unexpected}: an upload holds x, y and optionally "
                            "x_test, y_test", field=FIELD)
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise InvalidUpload(f"missing array(s) {missing}: an upload holds x and y", field=FIELD)
    if ("x_test" in names) != ("y_test" in names):
        raise InvalidUpload("x_test and y_test come together", field=FIELD)
    return names


def _check_headers(archive: zipfile.ZipFile, names: list[str], max_bytes: int) -> None:
    total = 0
    for name in names:
        with archive.open(f"{name}.npy") as member:
            shape, dtype = _read_header(member)
        if dtype.hasobject:
            raise InvalidUpload(f"{name} is an object array; only numeric arrays are accepted "
                                "(pickles are never loaded)", field=FIELD)
        total += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
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


def _check_arrays(arrays: dict[str, np.ndarray]) -> UploadInfo:
    x, y = arrays["x"], arrays["y"]
    _check_features("x", x)
    _check_labels("y", y, rows=x.shape[0])
    if x.shape[0] < 2:
        raise InvalidUpload("x needs at least 2 rows (training and validation)", field=FIELD)
    labels = [y]
    test_rows = None
    if "x_test" in arrays:
        x_test, y_test = arrays["x_test"], arrays["y_test"]
        _check_features("x_test", x_test)
        if x_test.shape[1:] != x.shape[1:]:
            raise InvalidUpload(f"x_test rows have shape {list(x_test.shape[1:])}, x rows "
                                f"{list(x.shape[1:])}", field=FIELD)
        _check_labels("y_test", y_test, rows=x_test.shape[0])
        labels.append(y_test)
        test_rows = int(x_test.shape[0])
    num_classes = max(int(label.max()) for label in labels if label.size) + 1
    if num_classes < 2:
        raise InvalidUpload("y needs at least two classes (labels 0 and 1)", field=FIELD)
    return UploadInfo(x_shape=tuple(int(n) for n in x.shape), num_classes=num_classes,
                      test_rows=test_rows)


def _check_features(name: str, x: np.ndarray) -> None:
    if x.dtype.kind not in "biuf":
        raise InvalidUpload(f"{name} must be numeric, not {x.dtype}", field=FIELD)
    if not 2 <= x.ndim <= 4:
        raise InvalidUpload(f"{name} must be (rows, features), (rows, h, w) or (rows, c, h, w), "
                            f"not shape {list(x.shape)}", field=FIELD)
    if 0 in x.shape:
        raise InvalidUpload(f"{name} is empty: shape {list(x.shape)}", field=FIELD)
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise InvalidUpload(f"{name} holds NaN or infinite values", field=FIELD)


def _check_labels(name: str, y: np.ndarray, *, rows: int) -> None:
    if y.dtype.kind not in "iu" or y.ndim != 1:
        raise InvalidUpload(f"{name} must be a 1-D array of integer class labels, not "
                            f"{y.dtype} of shape {list(y.shape)}", field=FIELD)
    if y.shape[0] != rows:
        raise InvalidUpload(f"{name} has {y.shape[0]} labels for {rows} rows", field=FIELD)
    if y.size and int(y.min()) < 0:
        raise InvalidUpload(f"{name} holds negative labels; classes are 0, 1, 2, ...",
                            field=FIELD)
