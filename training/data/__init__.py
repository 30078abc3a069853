"""The training core's data sets: five built-in sets that need no download, and user uploads.

Conventions the engine relies on:
- Tensors are on the CPU, contiguous, and owned by the caller (never shared with the cache, so
  moving or changing them in place is safe).
- Inputs are float32 (N, *shape.input_shape), normalized with training statistics only; ctr
  inputs are int64 category ids (N, fields), 0..cardinality-1 per field, never normalized.
- Labels are int64 class ids 0..shape.num_classes-1.
- Sizes equal shapes.data_shape(), except cifar10, whose sizes are what the folder holds (a
  smaller folder than the real one is allowed, for tests).
- The same spec and seed give identical tensors; raw sets are cached per process (see _CACHE).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gradlab_contract.shapes import DataShape, UploadInfo, data_shape
from gradlab_contract.spec import DataSpec

from training.data import cifar10, ctr, digits, mnist1d, spiral, upload
from training.data._arrays import Pool, Split, normalize, seeded_split
from training.data._cache import RawCache
from training.data.cifar10 import write_cifar10_binary

__all__ = ["Dataset", "load_dataset", "write_cifar10_binary"]

# A worker runs job after job: keep the few most recent raw sets, within a budget that holds
# the whole of CIFAR-10 (184 MB as uint8) twice.
_CACHE = RawCache(max_entries=4, max_bytes=512 * 2**20)


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors with == is not a bool
class Dataset:
    shape: DataShape
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


@dataclass(frozen=True)
class _Raw:
    """What the cache keeps: the arrays before splitting and normalizing, in their smallest
    dtype (uint8 images, int32 ids), and for uploads what the file says about itself."""

    rows: Pool | Split
    upload: UploadInfo | None = None

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes


def load_dataset(
    data: DataSpec, *, seed: int, data_root: Path | None = None, upload_path: Path | None = None
) -> Dataset:
    """Build (or take from the cache) the set a spec names, split and normalized for one job.

    Raises FileNotFoundError when cifar10's folder or the upload is missing, ValueError when an
    upload's content breaks the rules (the message says which).
    """
    raw = _raw(data, seed, data_root, upload_path)
    rows = raw.rows
    if isinstance(rows, Pool):  # no fixed test split: the job seed decides the validation rows
        rows = seeded_split(rows, data.val_fraction, seed)
    if data.family == "ctr":
        x_train, x_val = rows.x_train.astype(np.int64), rows.x_val.astype(np.int64)
    else:
        x_train, x_val = normalize(rows, data.normalize)
    shape = data_shape(data, raw.upload)
    if data.family == "cifar10":
        shape = dataclasses.replace(shape, n_train=len(rows.y_train), n_val=len(rows.y_val))
    dataset = Dataset(
        shape,
        torch.from_numpy(x_train),
        torch.from_numpy(rows.y_train.astype(np.int64, copy=True)),
        torch.from_numpy(x_val),
        torch.from_numpy(rows.y_val.astype(np.int64, copy=True)),
    )
    _check_matches_shape(dataset)
    return dataset


def clear_cache() -> None:
    """Drop every cached raw set (tests; a worker that wants its memory back)."""
    _CACHE.clear()


def _raw(data: DataSpec, seed: int, data_root: Path | None, upload_path: Path | None) -> _Raw:
    """The family's raw rows, keyed by everything that changes them and nothing else: the split
    seed is applied later, so digits and uploads are read once for all seeds."""
    options: Any = data.parsed_options()
    family = data.family
    if family == "mnist1d":
        sizes = data_shape(data)
        return _cached(
            ("mnist1d", options.samples, seed),
            lambda: _Raw(mnist1d.generate(options, seed, sizes.n_train, sizes.n_val)),
        )
    if family == "digits":
        return _cached(("digits",), lambda: _Raw(digits.load()))
    if family == "spiral":
        return _cached(("spiral", options, seed), lambda: _Raw(spiral.generate(options, seed)))
    if family == "ctr":
        return _cached(("ctr", options, seed), lambda: _Raw(ctr.generate(options, seed).pool()))
    if family == "cifar10":
        folder = cifar10.folder(data_root)
        files = cifar10.file_identity(folder)
        return _cached(
            ("cifar10", options.limit, str(folder.resolve()), files),
            lambda: _Raw(cifar10.load(folder, options.limit)),
        )
    if upload_path is None:
        raise ValueError(f"{data.dataset} needs the path of its uploaded file")
    stat = upload_path.stat()  # FileNotFoundError names the path
    return _cached(
        ("upload", str(upload_path.resolve()), stat.st_size, stat.st_mtime_ns),
        lambda: _Raw(*upload.read(upload_path)),
    )


def _cached(key: Hashable, build: Callable[[], _Raw]) -> _Raw:
    return _CACHE.get_or_build(key, build)


def _check_matches_shape(dataset: Dataset) -> None:
    """The service sized the model from shapes.data_shape: a mismatch is a bug, not bad input."""
    shape = dataset.shape
    expected = {
        "x_train": (shape.n_train, *shape.input_shape),
        "x_val": (shape.n_val, *shape.input_shape),
        "y_train": (shape.n_train,),
        "y_val": (shape.n_val,),
    }
    for name, size in expected.items():
        actual = tuple(getattr(dataset, name).shape)
        if actual != size:
            raise RuntimeError(f"{name} has shape {actual}, but data_shape promised {size}")
