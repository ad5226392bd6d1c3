"""The informer's store: frozen views keyed by (namespace, name), safe to share between threads.

client-go's ``cache.Store`` in miniature. The informer thread writes (a whole list at once, or one watch
event); any thread reads ``snapshot()``, an immutable mapping copied at most once per change and cached
until the next one, so a reconcile that finds nothing changed gets the very same object back (the
reconcile step relies on that identity to skip recomputing).

Every change bumps ``version`` and is logged per key, so a consumer that remembers the version it last
saw asks ``changes_since(version)`` for just the keys changed since (the incremental reconcile), and
reads them with ``get`` instead of copying the whole store. A ``replace`` (a list or relist) cuts the
log: a consumer older than it is told to start over (``Changes.keys is None``), as is one older than a
compaction, which keeps the log's size bounded by the store's when objects come and go with new names.
The log also keeps when each watch event arrived, for the speaker's event -> UPDATE latency.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar

from .views import Key

V = TypeVar("V")

#: Arrival times kept for the latency figures: plenty for one reconcile's batch, bounded under a flood.
RECEIVED_KEPT = 4096


@dataclass(frozen=True, slots=True)
class Changes:
    """What changed since a version: the keys (None: start over from a snapshot) and event arrivals."""

    version: int
    keys: frozenset[Key] | None
    #: ``time.perf_counter()`` when each change's watch event arrived (oldest first; may be truncated).
    received: tuple[float, ...] = ()


class Store(Generic[V]):
    """A thread-safe map of (namespace, name) -> frozen view, with a cached immutable snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, V] = {}
        self._snap: Mapping[Key, V] | None = None
        self._version = 0
        #: Versions older than this have no log: their consumers start over.
        self._floor = 0
        #: key -> version of its last change, in version order (re-inserted on each change).
        self._log: dict[Key, int] = {}
        self._received: deque[tuple[int, float]] = deque(maxlen=RECEIVED_KEPT)

    @property
    def version(self) -> int:
        """Bumped by every change."""
        return self._version

    def _changed(self, key: Key, at: float | None) -> None:
        # Under the lock. Compaction: once deleted names outnumber the live ones, drop the log.
        self._version += 1
        self._snap = None
        self._log.pop(key, None)
        self._log[key] = self._version
        self._received.append((self._version, time.perf_counter() if at is None else at))
        if len(self._log) > 2 * len(self._items) + 1024:
            self._log.clear()
            self._floor = self._version

    def replace(self, items: Mapping[Key, V]) -> bool:
        """Swap in a complete list atomically (objects absent from it vanish); True if anything changed."""
        with self._lock:
            if items == self._items:
                return False
            self._items = dict(items)
            self._snap = None
            self._version += 1
            self._floor = self._version
            self._log.clear()
            self._received.clear()
            return True

    def put(self, key: Key, view: V, at: float | None = None) -> bool:
        """Add or update one object (its watch event arrived at ``at``, perf_counter); True unless an
        equal view was already stored."""
        with self._lock:
            if key in self._items and self._items[key] == view:
                return False
            self._items[key] = view
            self._changed(key, at)
            return True

    def delete(self, key: Key, at: float | None = None) -> bool:
        """Remove one object; True if it was there."""
        with self._lock:
            if key not in self._items:
                return False
            del self._items[key]
            self._changed(key, at)
            return True

    def get(self, key: Key) -> V | None:
        """One object, or None."""
        return self._items.get(key)  # a single dict read is atomic: no lock

    def changes_since(self, version: int) -> Changes:
        """Keys changed after ``version`` (None if the log does not reach back that far), newest version."""
        with self._lock:
            if version < self._floor:
                return Changes(self._version, None)
            keys = []
            for key, v in reversed(self._log.items()):
                if v <= version:
                    break
                keys.append(key)
            received = []
            for v, t in reversed(self._received):
                if v <= version:
                    break
                received.append(t)
            return Changes(self._version, frozenset(keys), tuple(reversed(received)))

    def versioned_snapshot(self) -> tuple[int, Mapping[Key, V]]:
        """``snapshot()`` and the version it shows, read together."""
        with self._lock:
            if self._snap is None:
                self._snap = MappingProxyType(dict(self._items))
            return self._version, self._snap

    def snapshot(self) -> Mapping[Key, V]:
        """An immutable copy, the same object until the store changes again."""
        return self.versioned_snapshot()[1]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
