"""The informer's store: frozen views keyed by (namespace, name), safe to share between threads.

client-go's ``cache.Store`` in miniature. The informer thread writes (a whole list at once, or one watch
event); any thread reads ``snapshot()``, an immutable mapping copied at most once per change and cached
until the next one, so a reconcile that finds nothing changed gets the very same object back (the
reconcile step relies on that identity to skip recomputing).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Generic, TypeVar

from .views import Key

V = TypeVar("V")


class Store(Generic[V]):
    """A thread-safe map of (namespace, name) -> frozen view, with a cached immutable snapshot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[Key, V] = {}
        self._snap: Mapping[Key, V] | None = None

    def replace(self, items: Mapping[Key, V]) -> bool:
        """Swap in a complete list atomically (objects absent from it vanish); True if anything changed."""
        with self._lock:
            if items == self._items:
                return False
            self._items = dict(items)
            self._snap = None
            return True

    def put(self, key: Key, view: V) -> bool:
        """Add or update one object; True unless an equal view was already stored."""
        with self._lock:
            if key in self._items and self._items[key] == view:
                return False
            self._items[key] = view
            self._snap = None
            return True

    def delete(self, key: Key) -> bool:
        """Remove one object; True if it was there."""
        with self._lock:
            if key not in self._items:
                return False
            del self._items[key]
            self._snap = None
            return True

    def snapshot(self) -> Mapping[Key, V]:
        """An immutable copy, the same object until the store changes again."""
        with self._lock:
            if self._snap is None:
                self._snap = MappingProxyType(dict(self._items))
            return self._snap

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)
