"""The bytes of one chunk, and the summaries kept beside them.

Payload: a codec byte; a head of four little-endian uint16 (n, first offset, first attempt,
flags); the step offsets from the chunk's first possible step (uint16; left out when the steps
are consecutive, as per-step series are); the attempts (uint16; left out when one attempt wrote
them all, as usual); the values (float64, NaN for a non-finite value: the API sends null),
zlib-compressed (level 1) only where a sample shows that saves a quarter (a learning rate does,
a noisy loss does not).

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
_PROBE_BYTES = 4096
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
    n = len(block)
    offsets = block.steps - chunk * CHUNK_STEPS
    dense = bool(offsets[-1] - offsets[0] == n - 1)
    constant = bool(block.attempts[0] == block.attempts[-1] and
                    (block.attempts == block.attempts[0]).all())
    head = np.array([n, offsets[0], block.attempts[0], dense | constant << 1], "<u2")
    values = block.values.astype("<f8").tobytes()
    if _pays_to_compress(values):
        flags, values = _ZLIB, zlib.compress(values, 1)
    else:
        flags = _RAW
    return b"".join((flags, head.tobytes(),
                     b"" if dense else offsets.astype("<u2").tobytes(),
                     b"" if constant else block.attempts.astype("<u2").tobytes(), values))


def _pays_to_compress(values: bytes) -> bool:
    """Whether zlib saves a quarter, judged on a 4 kB sample: most losses are noise that does
    not compress, and compressing a whole chunk to find that out costs more than storing it."""
    probe = values[:_PROBE_BYTES]
    return len(zlib.compress(probe, 1)) < _WORTH_COMPRESSING * len(probe)


def decode(chunk: int, payload: bytes) -> Block:
    codec = payload[:1]
    n, first, attempt, flags = np.frombuffer(payload, "<u2", 4, 1).tolist()
    at = 9
    if flags & 1:
        offsets = np.arange(first, first + n, dtype=np.int64)
    else:
        offsets = np.frombuffer(payload, "<u2", n, at).astype(np.int64)
        at += 2 * n
    if flags & 2:
        attempts = np.full(n, attempt, np.int64)
    else:
        attempts = np.frombuffer(payload, "<u2", n, at).astype(np.int64)
        at += 2 * n
    body = payload[at:]
    values = np.frombuffer(zlib.decompress(body) if codec == _ZLIB else body, "<f8", n)
    return Block(offsets + chunk * CHUNK_STEPS, values, attempts)


def sketch(chunk: int, block: Block) -> bytes:
    """Each SKETCH_STEPS run's lowest and highest point (see the module's opening), in a fixed
    layout (an empty run's offsets are _EMPTY) so that many sketches decode as one array."""
    offsets = block.steps - chunk * CHUNK_STEPS
    run = offsets // SKETCH_STEPS
    key = np.where(np.isfinite(block.values), block.values, np.inf)  # non-finite: highest
    starts = np.flatnonzero(_changes(run))  # steps are sorted: runs too
    sizes = np.diff(np.append(starts, len(run)))
    low = _first_match(key == np.repeat(np.minimum.reduceat(key, starts), sizes), run)
    high = _first_match(key == np.repeat(np.maximum.reduceat(key, starts), sizes), run)
    layout = np.zeros(_RUNS, _SKETCH_DTYPE)
    layout["low_offset"] = layout["high_offset"] = _EMPTY
    present = run[starts]
    layout["low_offset"][present] = offsets[low]
    layout["low_value"][present] = block.values[low]
    layout["high_offset"][present] = offsets[high]
    layout["high_value"][present] = block.values[high]
    return layout.tobytes()


def _first_match(matches: npt.NDArray[np.bool_], run: Steps) -> npt.NDArray[np.intp]:
    """The first matching index of each run (every run has one)."""
    found = np.flatnonzero(matches)
    return found[_changes(run[found])]


def sketch_points(
    chunks: Sequence[int], sketches: Sequence[bytes]
) -> tuple[Steps, Values, npt.NDArray[np.intp]]:
    """The points of many chunks' sketches (chunks ascending) in step order, without repeats,
    and how many of them each chunk gave (a chunk that gave as many points as it holds was
    drawn exactly). No sort: within a run the lower offset goes first, and runs and chunks are
    in step order already."""
    if not sketches:
        return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.intp)
    table = np.frombuffer(b"".join(sketches), _SKETCH_DTYPE).reshape(len(sketches), _RUNS)
    low, high = table["low_offset"], table["high_offset"]
    swap = high < low
    offsets = np.stack((np.where(swap, high, low), np.where(swap, low, high)), axis=2)
    values = np.stack((np.where(swap, table["high_value"], table["low_value"]),
                       np.where(swap, table["low_value"], table["high_value"])), axis=2)
    kept = np.stack((low != _EMPTY, (low != _EMPTY) & (high != low)), axis=2)
    base = (np.asarray(chunks, np.int64) * CHUNK_STEPS)[:, None, None]
    steps = (offsets.astype(np.int64) + base)[kept]
    return steps, values[kept], kept.reshape(len(sketches), -1).sum(axis=1)


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
    first = _changes(steps)
    return Block(steps[first], values[first], attempts[first])


def from_points(steps: Steps, values: Values, attempt: int) -> Block:
    """A block from unsorted points with unique steps; non-finite values become NaN."""
    order = np.argsort(steps, kind="stable")
    clean = np.where(np.isfinite(values), values, np.nan)[order]
    return Block(steps[order], clean, np.full(len(steps), attempt, np.int64))


def split(block: Block) -> dict[int, Block]:
    """A block in step order cut at chunk boundaries: chunk -> its points."""
    owners = block.steps // CHUNK_STEPS
    starts = np.flatnonzero(_changes(owners))
    ends = np.append(starts[1:], len(owners))
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


def _changes(keys: Steps) -> npt.NDArray[np.bool_]:
    """True where a sorted array's value differs from the one before (and at the start)."""
    changed = np.empty(len(keys), bool)
    changed[:1] = True
    np.not_equal(keys[1:], keys[:-1], out=changed[1:])
    return changed
