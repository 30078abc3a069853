"""CIFAR-10 in its standard binary format, read from a local folder (never downloaded).

The format (https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"): the folder
``cifar-10-batches-bin`` holds data_batch_1.bin .. data_batch_5.bin (10,000 training images each)
and test_batch.bin; every record is one label byte (0..9) followed by 3,072 bytes of the image,
channel by channel (red, green, blue), each channel 32 rows of 32 pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data._arrays import Split

FOLDER = "cifar-10-batches-bin"
TRAIN_FILES = tuple(f"data_batch_{index}.bin" for index in range(1, 6))
TEST_FILE = "test_batch.bin"
IMAGE_SHAPE = (3, 32, 32)
RECORD_BYTES = 1 + 3 * 32 * 32
CLASSES = 10


def folder(data_root: Path | None) -> Path:
    """The data folder, checked to hold every file of the format."""
    if data_root is None:
        raise FileNotFoundError(
            "cifar10 is read from a local folder, but this worker has no data root configured"
        )
    path = data_root / FOLDER
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"CIFAR-10 not found at {path}: expected the binary version (folder {FOLDER} with "
            f"{', '.join(TRAIN_FILES)} and {TEST_FILE}, from cifar-10-binary.tar.gz); "
            f"missing {', '.join(missing)}"
        )
    return path


def file_identity(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and modification time of each file: a replaced file is read again."""
    stats = [(name, (path / name).stat()) for name in (*TRAIN_FILES, TEST_FILE)]
    return tuple((name, stat.st_size, stat.st_mtime_ns) for name, stat in stats)


def load(path: Path, limit: int | None) -> Split:
    """The first ``limit`` training images (all when None) and the whole test batch, as uint8
    (N, 3, 32, 32). Batch files may hold fewer than 10,000 records (tests write tiny ones)."""
    images, labels = [], []
    remaining = limit
    for name in TRAIN_FILES:
        if remaining == 0:
            break
        x, y = read_binary(path / name, remaining)
        images.append(x)
        labels.append(y)
        remaining = None if remaining is None else remaining - len(y)
    x_val, y_val = read_binary(path / TEST_FILE)
    return Split(np.concatenate(images), np.concatenate(labels), x_val, y_val)


def read_binary(path: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one batch file, at most ``limit``."""
    size = path.stat().st_size
    if size % RECORD_BYTES:
        raise ValueError(
            f"{path} is not CIFAR-10 binary: {size} bytes is not a multiple of {RECORD_BYTES}"
        )
    records = size // RECORD_BYTES if limit is None else min(limit, size // RECORD_BYTES)
    raw = np.fromfile(path, dtype=np.uint8, count=records * RECORD_BYTES).reshape(
        records, RECORD_BYTES
    )
    labels = raw[:, 0].astype(np.int64)
    if labels.size and labels.max() >= CLASSES:
        raise ValueError(f"{path} is not CIFAR-10 binary: label {labels.max()} is not in 0..9")
    return np.ascontiguousarray(raw[:, 1:]).reshape(records, *IMAGE_SHAPE), labels


def write_cifar10_binary(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write one batch file in the standard format (for tests and for building a small folder)."""
    if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images must be uint8 (N, 3, 32, 32), got {images.dtype} {images.shape}")
    if (
        labels.shape != (len(images),)
        or labels.min(initial=0) < 0
        or labels.max(initial=0) >= CLASSES
    ):
        raise ValueError(f"labels must be {len(images)} integers in 0..9")
    records = np.empty((len(images), RECORD_BYTES), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.reshape(len(images), -1)
    path.write_bytes(records.tobytes())
