"""A versioned object store with bounded history: the etcd + watch-cache half of the lab API server.

One global, monotonically increasing resourceVersion is shared by every kind (as etcd's revision is);
each write appends one event to a bounded history. ``state_at(rv)`` rebuilds a kind's objects as they
were at ``rv`` by undoing later events, which is what serves consistent paginated lists ("Continue Token,
Exact") and ``resourceVersionMatch=Exact``. Versions older than the retained history raise ``Expired``
(HTTP 410 upstream). Standard library only; thread-safe under one ``threading.Condition`` that watchers
also wait on.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON = dict[str, Any]
Key = str  # "namespace/name", or "name" for cluster-scoped kinds: etcd key order


@dataclass(frozen=True, slots=True)
class Resource:
    """A served resource type (kind, group/version, URL plural, scope)."""

    plural: str
    kind: str
    api_version: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        """URL prefix of the group/version: ``/api/v1`` or ``/apis/<group>/<version>``."""
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    @property
    def list_kind(self) -> str:
        """Kind of the collection (``ServiceList``)."""
        return self.kind + "List"


RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource("services", "Service", "v1", True),
        Resource("endpointslices", "EndpointSlice", "discovery.k8s.io/v1", True),
        Resource("nodes", "Node", "v1", False),
    )
}


def resource_for(kind_or_plural: str) -> Resource:
    """Look a resource up by kind (``Service``) or plural (``services``), case-insensitively."""
    name = kind_or_plural.lower()
    for res in RESOURCES.values():
        if name in (res.plural, res.kind.lower()):
            return res
    raise KeyError(f"unsupported kind {kind_or_plural!r} (served: {', '.join(RESOURCES)})")


def object_key(res: Resource, namespace: str | None, name: str) -> Key:
    """Store key of an object."""
    return f"{namespace}/{name}" if res.namespaced else name


class Expired(Exception):
    """The requested resourceVersion is older than the retained history (HTTP 410 Gone upstream)."""


@dataclass(slots=True)
class Event:
    """One write: the object after it (``obj``) and before it (``prev``; None for ADDED)."""

    rv: int
    res: Resource
    type: str  # ADDED, MODIFIED, DELETED
    key: Key
    obj: JSON
    prev: JSON | None
    _json: dict[str, bytes] = field(default_factory=dict)


# Metadata the server owns; an apply that changes nothing else is a no-op (no new resourceVersion),
# as an update that does not change the stored bytes is upstream.
_SERVER_META = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields")


def _comparable(obj: Mapping[str, Any]) -> JSON:
    out = dict(obj)
    out["metadata"] = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_META}
    return out


def with_rv(obj: Mapping[str, Any], rv: int) -> JSON:
    """A shallow copy with ``metadata.resourceVersion`` set."""
    out = dict(obj)
    out["metadata"] = {**(obj.get("metadata") or {}), "resourceVersion": str(rv)}
    return out


class ObjectStore:
    """Objects of every served kind plus the event history, under one lock."""

    def __init__(self, history: int = 1000, first_rv: int = 1) -> None:
        if history < 1:
            raise ValueError("history must be >= 1")
        self.cond = threading.Condition()
        self.history = history
        self.rv = first_rv
        #: Watches from any resourceVersion >= oldest_rv can be served from the history.
        self.oldest_rv = first_rv
        self._objects: dict[str, dict[Key, JSON]] = {p: {} for p in RESOURCES}
        self._events: list[Event] = []  # consecutive: _events[i].rv == oldest_rv + 1 + i
        self._sorted_cache: dict[tuple[str, int], tuple[list[Key], list[JSON]]] = {}

    # -- writes ---------------------------------------------------------------------------------------

    def apply(self, obj: Mapping[str, Any]) -> JSON:
        """Create or update (whole-object replace); returns the stored object."""
        res = resource_for(str(obj.get("kind") or ""))
        meta = copy.deepcopy(dict(obj.get("metadata") or {}))
        name = meta.get("name")
        if not name or not isinstance(name, str):
            raise ValueError("metadata.name is required")
        if res.namespaced:
            meta["namespace"] = str(meta.get("namespace") or "default")
        else:
            meta.pop("namespace", None)
        body = copy.deepcopy({k: v for k, v in obj.items() if k not in ("kind", "apiVersion", "metadata")})
        new: JSON = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta, **body}
        key = object_key(res, meta.get("namespace"), name)
        with self.cond:
            objects = self._objects[res.plural]
            prev = objects.get(key)
            if prev is not None and _comparable(prev) == _comparable(new):
                return copy.deepcopy(prev)
            rv = self.rv + 1
            if prev is None:
                meta["uid"] = str(uuid.uuid4())
                meta["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            else:
                meta["uid"] = prev["metadata"]["uid"]
                meta["creationTimestamp"] = prev["metadata"]["creationTimestamp"]
            meta["resourceVersion"] = str(rv)
            meta.pop("managedFields", None)
            objects[key] = new
            self._append(Event(rv, res, "MODIFIED" if prev else "ADDED", key, new, prev))
            return copy.deepcopy(new)

    def delete(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """Delete an object; returns it (with the deletion's resourceVersion) or None if absent."""
        res = resource_for(kind)
        key = object_key(res, namespace or "default", name)
        with self.cond:
            prev = self._objects[res.plural].pop(key, None)
            if prev is None:
                return None
            rv = self.rv + 1
            # Upstream the DELETED event carries the last state with the deletion's resourceVersion.
            gone = with_rv(prev, rv)
            self._append(Event(rv, res, "DELETED", key, gone, prev))
            return copy.deepcopy(gone)

    def _append(self, ev: Event) -> None:
        self.rv = ev.rv
        self._events.append(ev)
        excess = len(self._events) - self.history
        if excess > 0:
            del self._events[:excess]
            self.oldest_rv += excess
        self.cond.notify_all()

    def compact(self) -> None:
        """Forget the whole history: every resourceVersion older than the current one becomes 410."""
        with self.cond:
            self._events.clear()
            self.oldest_rv = self.rv
            self._sorted_cache.clear()
            self.cond.notify_all()

    # -- reads (callers hold no lock; these take it) -------------------------------------------------

    def get(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """A deep copy of the current object, or None."""
        res = resource_for(kind)
        with self.cond:
            obj = self._objects[res.plural].get(object_key(res, namespace or "default", name))
            return copy.deepcopy(obj) if obj is not None else None

    def current(self, res: Resource) -> tuple[int, list[JSON]]:
        """The current resourceVersion and the kind's objects (shared, do not mutate)."""
        with self.cond:
            return self.rv, list(self._objects[res.plural].values())

    def sorted_at(self, res: Resource, rv: int) -> tuple[list[Key], list[JSON]]:
        """The kind's keys and objects as of ``rv``, in key order; raises ``Expired``. Cached per version."""
        with self.cond:
            if rv > self.rv:
                raise ValueError(f"resourceVersion {rv} is in the future (current {self.rv})")
            if rv < self.oldest_rv:
                raise Expired(f"too old resource version: {rv} ({self.oldest_rv})")
            # The state at a retained version never changes, so the cache survives later writes.
            cached = self._sorted_cache.get((res.plural, rv))
            if cached is not None:
                return cached
            state = dict(self._objects[res.plural])
            for ev in reversed(self._events[rv - self.oldest_rv :]):
                if ev.res is not res:
                    continue
                if ev.type == "ADDED":
                    state.pop(ev.key, None)
                elif ev.prev is not None:
                    state[ev.key] = ev.prev
            keys = sorted(state)
            out = (keys, [state[k] for k in keys])
            if len(self._sorted_cache) >= 8:
                self._sorted_cache.pop(next(iter(self._sorted_cache)))
            self._sorted_cache[(res.plural, rv)] = out
            return out

    def events_after_locked(self, rv: int) -> list[Event]:
        """Events with resourceVersion > rv; the caller holds ``cond``. Raises ``Expired``."""
        if rv < self.oldest_rv:
            raise Expired(f"too old resource version: {rv} ({self.oldest_rv})")
        return self._events[rv - self.oldest_rv :]
