"""The bytes of one chunk, and the summary kept beside them.

Layout: one codec byte, then n little-endian step offsets (uint16, from the block's first
possible step), n values (float64, NaN for a non-finite value: the API sends them as null), and
n attempts (uint16). The whole is zlib-compressed (level 1) only when that saves a quarter:
dense offsets and a constant attempt shrink to almost nothing, noisy losses barely at all, and
a level-1 inflate of a 1024-point chunk costs microseconds.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CHUNK_STEPS = 1024  # steps per block: offsets fit uint16; ~1000 summary rows for 1M steps
_RAW, _ZLIB = b"r", b"z"
_POINT_BYTES = 2 + 8 + 2  # offset, value, attempt
_WORTH_COMPRESSING = 0.75

Steps = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]
Attempts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Block:
    """The points of one chunk in step order: steps unique, NaN for a non-finite value."""

    steps: Steps
    values: Values
    attempts: Attempts

    def __len__(self) -> int:
        return len(self.steps)

    def take(self, keep: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Block:
        return Block(self.steps[keep], self.values[keep], self.attempts[keep])


@dataclass(frozen=True)
class Summary:
    """What a downsampled read needs of a chunk without opening it."""

    first_step: int
    last_step: int
    count: int
    low_step: int | None  # the lowest finite point (None: no finite value)
    low_value: float | None
    high_step: int | None  # the highest finite point
    high_value: float | None
    nonfinite_step: int | None  # the first non-finite point (a divergence's onset)


def chunk_of(step: int) -> int:
    return step // CHUNK_STEPS


def encode(chunk: int, block: Block) -> bytes:
    offsets = (block.steps - chunk * CHUNK_STEPS).astype("<u2")
    raw = b"".join((offsets.tobytes(), block.values.astype("<f8").tobytes(),
                    block.attempts.astype("<u2").tobytes()))
    packed = zlib.compress(raw, 1)
    if len(packed) < _WORTH_COMPRESSING * len(raw):
        return _ZLIB + packed
    return _RAW + raw


def decode(chunk: int, payload: bytes) -> Block:
    codec, body = payload[:1], payload[1:]
    raw = zlib.decompress(body) if codec == _ZLIB else body
    n = len(raw) // _POINT_BYTES
    offsets = np.frombuffer(raw, "<u2", n, 0).astype(np.int64)
    values = np.frombuffer(raw, "<f8", n, 2 * n).astype(np.float64)
    attempts = np.frombuffer(raw, "<u2", n, 10 * n).astype(np.int64)
    return Block(offsets + chunk * CHUNK_STEPS, values, attempts)


def summarize(block: Block) -> Summary:
    finite = np.isfinite(block.values)
    low = high = nonfinite = None
    if finite.any():
        masked_low = np.where(finite, block.values, np.inf)
        masked_high = np.where(finite, block.values, -np.inf)
        low, high = int(np.argmin(masked_low)), int(np.argmax(masked_high))
    if not finite.all():
        nonfinite = int(np.argmin(finite))
    return Summary(
        first_step=int(block.steps[0]), last_step=int(block.steps[-1]), count=len(block),
        low_step=None if low is None else int(block.steps[low]),
        low_value=None if low is None else float(block.values[low]),
        high_step=None if high is None else int(block.steps[high]),
        high_value=None if high is None else float(block.values[high]),
        nonfinite_step=None if nonfinite is None else int(block.steps[nonfinite]),
    )


def merge(old: Block, new: Block) -> Block:
    """The union of two blocks; at a step both hold, `new` wins unless `old` was written by the
    same or a later attempt (a replayed batch changes nothing, a newer attempt overwrites)."""
    steps = np.concatenate((old.steps, new.steps))
    values = np.concatenate((old.values, new.values))
    attempts = np.concatenate((old.attempts, new.attempts))
    # Sort by step, then prefer the newer attempt, then the old block's point on a tie.
    source = np.concatenate((np.zeros(len(old), np.int8), np.ones(len(new), np.int8)))
    order = np.lexsort((source, -attempts, steps))
    steps, values, attempts = steps[order], values[order], attempts[order]
    first = np.ones(len(steps), bool)
    first[1:] = steps[1:] != steps[:-1]
    return Block(steps[first], values[first], attempts[first])


def from_points(steps: Steps, values: Values, attempt: int) -> Block:
    """A block from unsorted points with unique steps; non-finite values become NaN."""
    order = np.argsort(steps, kind="stable")
    clean = np.where(np.isfinite(values), values, np.nan)[order]
    return Block(steps[order], clean, np.full(len(steps), attempt, np.int64))
