"""Plain numpy building blocks shared by the data set sources: seeded random streams, the
train/validation split and input normalization. No torch here, so every step is easy to test.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from gradlab_contract.shapes import split
from gradlab_contract.spec import Normalize

# Below this spread a feature is treated as constant: dividing by it would only amplify noise.
_MIN_SPREAD = 1e-7
# Rows per chunk when computing statistics, so a large image set never needs a float64 copy.
_CHUNK_ROWS = 2048


@dataclass(frozen=True)
class Pool:
    """All rows of a set without a fixed test split; load_dataset splits it by val_fraction."""

    x: np.ndarray
    y: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.x.nbytes + self.y.nbytes


@dataclass(frozen=True)
class Split:
    """A set whose train and validation rows are already decided (a fixed test split)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.x_train.nbytes + self.y_train.nbytes + self.x_val.nbytes + self.y_val.nbytes


def rng_for(seed: int, purpose: str) -> np.random.Generator:
    """An independent random stream per (job seed, purpose): generating a set and splitting it
    draw from different streams, so changing one never shifts the other."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(purpose.encode())]))


def seeded_split(pool: Pool, val_fraction: float, seed: int) -> Split:
    """Shuffle with the job seed, then cut with shapes.split: the sizes the service estimated."""
    n_train, n_val = split(len(pool.y), val_fraction)
    if n_train < 1:
        raise ValueError(
            f"{len(pool.y)} rows leave no training rows at val_fraction={val_fraction}"
        )
    order = rng_for(seed, "split").permutation(len(pool.y))
    val, train = order[:n_val], order[n_val:]
    return Split(pool.x[train], pool.y[train], pool.x[val], pool.y[val])


def normalize(split_: Split, how: Normalize) -> tuple[np.ndarray, np.ndarray]:
    """Float32 copies of the train and validation inputs, scaled with TRAIN statistics only
    (validation statistics would leak into training). Statistics are per feature for vectors and
    per channel for sequences and images (axis 1 in both cases)."""
    x_train = split_.x_train.astype(np.float32, copy=True)
    x_val = split_.x_val.astype(np.float32, copy=True)
    if how == "none":
        return x_train, x_val
    if how == "standardize":
        mean, std = _channel_mean_std(split_.x_train)
        shift, scale = mean, np.where(std > _MIN_SPREAD, std, 1.0)
    else:  # minmax
        low, high = _channel_min_max(split_.x_train)
        spread = high - low
        shift, scale = low, np.where(spread > _MIN_SPREAD, spread, 1.0)
    for x in (x_train, x_val):
        # In place on the float32 copies: no second full-size array for large image sets.
        x -= _broadcastable(shift, x.ndim).astype(np.float32)
        x /= _broadcastable(scale, x.ndim).astype(np.float32)
    return x_train, x_val


def _reduce_axes(ndim: int) -> tuple[int, ...]:
    return tuple(axis for axis in range(ndim) if axis != 1)


def _broadcastable(per_channel: np.ndarray, ndim: int) -> np.ndarray:
    return per_channel.reshape((1, -1) + (1,) * (ndim - 2))


def _chunks(x: np.ndarray) -> Iterator[np.ndarray]:
    for start in range(0, len(x), _CHUNK_ROWS):
        yield x[start : start + _CHUNK_ROWS]


def _channel_mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two passes in float64 over row chunks: exact enough, and memory stays one chunk."""
    axes = _reduce_axes(x.ndim)
    count = x.size // x.shape[1]
    total = np.zeros(x.shape[1])
    for chunk in _chunks(x):
        total += chunk.sum(axis=axes, dtype=np.float64)
    mean = total / count
    squares = np.zeros(x.shape[1])
    centre = _broadcastable(mean, x.ndim)
    for chunk in _chunks(x):
        squares += np.square(chunk - centre).sum(axis=axes)
    return mean, np.sqrt(squares / count)


def _channel_min_max(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    axes = _reduce_axes(x.ndim)
    return x.min(axis=axes).astype(np.float64), x.max(axis=axes).astype(np.float64)
