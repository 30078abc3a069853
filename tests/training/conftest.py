"""Fixtures for the training core's data tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from training.data import clear_cache, write_cifar10_binary
from training.data.cifar10 import FOLDER, TEST_FILE, TRAIN_FILES

CIFAR_PER_BATCH = 4
CIFAR_TEST_ROWS = 3  # tests rely on these sizes: 20 training images, 3 test images


@pytest.fixture(autouse=True)
def fresh_data_cache() -> Iterator[None]:
    """Each test starts and ends with an empty cache, so none sees another's sets."""
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    """A CIFAR-10 binary folder with 4 images per training batch (20 in all) and 3 test images.

    Pixel values are random (so a test can tell which images were read); training labels count
    0..9 twice over the files in order, test labels are 7, 8, 9.
    """
    rng = np.random.default_rng(0)
    folder = tmp_path / FOLDER
    folder.mkdir()
    for index, name in enumerate(TRAIN_FILES):
        images = rng.integers(0, 256, (CIFAR_PER_BATCH, 3, 32, 32), dtype=np.uint8)
        labels = (np.arange(CIFAR_PER_BATCH) + index * CIFAR_PER_BATCH) % 10
        write_cifar10_binary(folder / name, images, labels)
    test_images = rng.integers(0, 256, (CIFAR_TEST_ROWS, 3, 32, 32), dtype=np.uint8)
    write_cifar10_binary(folder / TEST_FILE, test_images, np.array([7, 8, 9]))
    return tmp_path
