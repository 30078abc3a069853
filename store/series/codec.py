"""The bytes of one chunk, and the summaries kept beside them.

Payload: one codec byte, then n little-endian step offsets (uint16, from the block's first
possible step), n values (float64, NaN for a non-finite value: the API sends them as null), and
n attempts (uint16). The whole is zlib-compressed (level 1) only when that saves a quarter:
dense offsets and a constant attempt shrink to almost nothing, noisy losses barely at all, and
a level-1 inflate of a chunk costs microseconds.

Sketch: for each run of SKETCH_STEPS steps of the chunk that holds a point, its lowest and its
highest point (a non-finite value counts as the highest, as a divergence is the spike that
matters most): the candidates MinMaxLTTB would pre-select from those points anyway, so a long
series is downsampled from sketches, a few hundred bytes a chunk, without opening payloads.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

CHUNK_STEPS = 4096  # steps per row: offsets fit uint16; 245 rows for a million steps
SKETCH_STEPS = 64  # steps per sketch entry: up to 128 candidate points per chunk
_RAW, _ZLIB = b"r", b"z"
_POINT_BYTES = 2 + 8 + 2  # offset, value, attempt
_RUNS = CHUNK_STEPS // SKETCH_STEPS
_EMPTY = 0xFFFF  # the offset of a run without points: no step of a chunk has it
_SKETCH_DTYPE = np.dtype([("low_offset", "<u2"), ("low_value", "<f8"),
                          ("high_offset", "<u2"), ("high_value", "<f8")])
_WORTH_COMPRESSING = 0.75

Steps = npt.NDArray[np.int64]
Values = npt.NDArray[np.float64]
Attempts = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Block:
    """Points in step order: steps unique, NaN for a non-finite value."""

    steps: Steps
    values: Values
    attempts: Attempts

    def __len__(self) -> int:
        return len(self.steps)

    def take(self, keep: npt.NDArray[np.bool_] | npt.NDArray[np.intp] | slice) -> Block:
        return Block(self.steps[keep], self.values[keep], self.attempts[keep])


@dataclass(frozen=True)
class Summary:
    """What a read needs of a chunk without opening its payload."""

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


def empty_block() -> Block:
    return Block(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int64))


def row_fields(chunk: int, block: Block) -> dict[str, object]:
    """The columns of a chunk's row that its points decide (all but job, name and attempt)."""
    return {"chunk": chunk, **vars(summarize(block)), "sketch": sketch(chunk, block),
            "payload": encode(chunk, block)}


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
    values = np.frombuffer(raw, "<f8", n, 2 * n)
    attempts = np.frombuffer(raw, "<u2", n, 10 * n).astype(np.int64)
    return Block(offsets + chunk * CHUNK_STEPS, values, attempts)


def sketch(chunk: int, block: Block) -> bytes:
    """Each SKETCH_STEPS run's lowest and highest point (see the module's opening), in a fixed
    layout (an empty run's offsets are _EMPTY) so that many sketches decode as one array."""
    offsets = block.steps - chunk * CHUNK_STEPS
    run = offsets // SKETCH_STEPS
    finite = np.isfinite(block.values)
    key = np.where(finite, block.values, np.inf)  # non-finite: the highest, never the lowest
    starts = np.flatnonzero(np.r_[True, run[1:] != run[:-1]])  # steps are sorted: runs too
    ends = np.r_[starts[1:], len(run)] - 1
    low = np.lexsort((key, run))[starts]  # by run, then value: a run's first is its lowest
    # by run, value, then latest step first: a run's last is its highest, and the earliest of
    # several non-finite points
    high = np.lexsort((-offsets, key, run))[ends]
    layout = np.zeros(_RUNS, _SKETCH_DTYPE)
    layout["low_offset"] = layout["high_offset"] = _EMPTY
    present = run[starts]
    layout["low_offset"][present] = offsets[low]
    layout["low_value"][present] = block.values[low]
    layout["high_offset"][present] = offsets[high]
    layout["high_value"][present] = block.values[high]
    return layout.tobytes()


def sketch_points(chunks: Sequence[int], sketches: Sequence[bytes]) -> tuple[Steps, Values]:
    """The points of many chunks' sketches, in step order, without repeats."""
    if not sketches:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    table = np.frombuffer(b"".join(sketches), _SKETCH_DTYPE).reshape(len(sketches), _RUNS)
    base = (np.asarray(chunks, np.int64) * CHUNK_STEPS)[:, None]
    offsets = np.concatenate((table["low_offset"], table["high_offset"]), axis=1)
    values = np.concatenate((table["low_value"], table["high_value"]), axis=1)
    present = offsets != _EMPTY
    steps = (offsets.astype(np.int64) + base)[present]
    unique, first = np.unique(steps, return_index=True)
    return unique, values[present][first]


def summarize(block: Block) -> Summary:
    finite = np.isfinite(block.values)
    low = high = nonfinite = None
    if finite.any():
        low = int(np.argmin(np.where(finite, block.values, np.inf)))
        high = int(np.argmax(np.where(finite, block.values, -np.inf)))
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
    first = np.r_[True, steps[1:] != steps[:-1]]
    return Block(steps[first], values[first], attempts[first])


def from_points(steps: Steps, values: Values, attempt: int) -> Block:
    """A block from unsorted points with unique steps; non-finite values become NaN."""
    order = np.argsort(steps, kind="stable")
    clean = np.where(np.isfinite(values), values, np.nan)[order]
    return Block(steps[order], clean, np.full(len(steps), attempt, np.int64))


def split(block: Block) -> dict[int, Block]:
    """A block in step order cut at chunk boundaries: chunk -> its points."""
    owners = block.steps // CHUNK_STEPS
    starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
    ends = np.r_[starts[1:], len(owners)]
    return {int(owners[s]): block.take(slice(int(s), int(e))) for s, e in zip(starts, ends,
                                                                              strict=True)}


def concat(blocks: list[Block]) -> Block:
    """The points of blocks, in step order (they may interleave)."""
    if not blocks:
        return empty_block()
    steps = np.concatenate([b.steps for b in blocks])
    order = np.argsort(steps, kind="stable")
    return Block(steps[order], np.concatenate([b.values for b in blocks])[order],
                 np.concatenate([b.attempts for b in blocks])[order])
