"""A small per-process cache of raw data sets, so a worker that runs many jobs generates or reads
each set once. Bounded both in entries and in bytes: a worker lives long and memory is shared
with the training itself.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Protocol, TypeVar, cast


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


T = TypeVar("T", bound=Sized)


class RawCache:
    """Least recently used entries go first. An entry larger than the byte budget is built and
    returned but never kept, so one huge set cannot push the process over its budget."""

    def __init__(self, *, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, Sized] = OrderedDict()
        # Held while building: two threads asking for the same set must not build it twice, and
        # the mnist1d generator touches numpy's global random state.
        self._lock = threading.Lock()

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return cast(T, self._entries[key])
            value = build()
            if value.nbytes <= self.max_bytes:
                self._entries[key] = value
                self._evict()
            return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        return sum(entry.nbytes for entry in self._entries.values())

    def _evict(self) -> None:
        while len(self._entries) > self.max_entries or self.nbytes > self.max_bytes:
            self._entries.popitem(last=False)
