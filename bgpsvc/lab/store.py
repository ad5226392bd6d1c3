"""A versioned object store with bounded history: the etcd + watch-cache half of the lab API server.

One global, monotonically increasing resourceVersion is shared by every kind (as etcd's revision is);
each write appends one event to a bounded history. ``state_at(rv)`` rebuilds a kind's objects as they
were at ``rv`` by undoing later events, which is what serves consistent paginated lists ("Continue Token,
Exact") and ``resourceVersionMatch=Exact``. Versions older than the retained history raise ``Expired``
(HTTP 410 upstream). Standard library only; thread-safe under one ``threading.Condition`` (re-entrant)
that watchers also wait on and that writers hold across read-check-write (optimistic concurrency).

Resources are looked up in a per-store ``Registry``: the built-in kinds plus whatever CustomResource-
Definitions register. Objects are kept per *storage key* (``<plural>.<group>``), so every served version
of one custom resource shares them; they are stored at the storage version and rewritten on the way out.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterable, Mapping
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
    list_kind_name: str = ""  # spec.names.listKind of a CRD; default <Kind>List
    custom: bool = False  # defined by a CRD: list items keep kind/apiVersion (unstructured lists)

    @property
    def group(self) -> str:
        """API group ("" for the core group)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        """API version within the group."""
        return self.api_version.rpartition("/")[2]

    @property
    def storage(self) -> str:
        """Storage key shared by all versions: ``<plural>.<group>`` (``<plural>`` in the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def prefix(self) -> str:
        """URL prefix of the group/version: ``/api/v1`` or ``/apis/<group>/<version>``."""
        return "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"

    @property
    def list_kind(self) -> str:
        """Kind of the collection (``ServiceList``)."""
        return self.list_kind_name or self.kind + "List"


CRD_RESOURCE = Resource(
    "customresourcedefinitions", "CustomResourceDefinition", "apiextensions.k8s.io/v1", False
)
RESOURCES: dict[str, Resource] = {
    r.plural: r
    for r in (
        Resource("services", "Service", "v1", True),
        Resource("endpointslices", "EndpointSlice", "discovery.k8s.io/v1", True),
        Resource("nodes", "Node", "v1", False),
        Resource("secrets", "Secret", "v1", True),
        CRD_RESOURCE,
    )
}


def resource_for(kind_or_plural: str) -> Resource:
    """Look a built-in resource up by kind (``Service``) or plural (``services``), case-insensitively."""
    name = kind_or_plural.lower()
    for res in RESOURCES.values():
        if name in (res.plural, res.kind.lower()):
            return res
    raise KeyError(f"unsupported kind {kind_or_plural!r} (served: {', '.join(RESOURCES)})")


class Registry:
    """The resources a server serves: the built-ins plus those CRDs registered (one entry per version)."""

    def __init__(self, builtins: Iterable[Resource] = RESOURCES.values()) -> None:
        self._res: dict[tuple[str, str], Resource] = {(r.api_version, r.plural): r for r in builtins}

    def add(self, res: Resource) -> None:
        """Serve ``res`` (replaces an entry with the same group/version/plural)."""
        self._res[(res.api_version, res.plural)] = res

    def remove(self, res: Resource) -> None:
        """Stop serving ``res``."""
        self._res.pop((res.api_version, res.plural), None)

    def find(self, api_version: str, plural: str) -> Resource | None:
        """The resource served at ``/<prefix>/<api_version>/<plural>``, or None."""
        return self._res.get((api_version, plural))

    def lookup(self, kind_or_plural: str, api_version: str | None = None) -> Resource:
        """By kind or plural (case-insensitive), optionally within one apiVersion; raises ``KeyError``."""
        name = kind_or_plural.lower()
        for res in self._res.values():
            if name in (res.plural, res.kind.lower()) and api_version in (None, "", res.api_version):
                return res
        for res in self._res.values():  # a built-in kind written with another apiVersion: as before CRDs
            if name in (res.plural, res.kind.lower()) and not res.custom:
                return res
        served = ", ".join(sorted({r.kind for r in self._res.values()}))
        raise KeyError(f"unsupported kind {kind_or_plural!r} (served: {served})")

    def all(self) -> list[Resource]:
        """Every served resource, in registration order."""
        return list(self._res.values())


def object_key(res: Resource, namespace: str | None, name: str) -> Key:
    """Store key of an object."""
    return f"{namespace}/{name}" if res.namespaced else name


def as_version(obj: JSON, res: Resource) -> JSON:
    """The object as served at ``res``'s version (conversion strategy None: only apiVersion changes)."""
    if obj.get("apiVersion") == res.api_version:
        return obj
    return {**obj, "apiVersion": res.api_version}


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


def now_rfc3339() -> str:
    """The current time as Kubernetes writes timestamps."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectStore:
    """Objects of every served kind plus the event history, under one lock."""

    def __init__(self, history: int = 1000, first_rv: int = 1) -> None:
        if history < 1:
            raise ValueError("history must be >= 1")
        self.cond = threading.Condition(threading.RLock())
        self.history = history
        self.rv = first_rv
        #: Watches from any resourceVersion >= oldest_rv can be served from the history.
        self.oldest_rv = first_rv
        self.registry = Registry()
        self._objects: dict[str, dict[Key, JSON]] = {}
        self._events: list[Event] = []  # consecutive: _events[i].rv == oldest_rv + 1 + i
        self._sorted_cache: dict[tuple[str, int], tuple[list[Key], list[JSON]]] = {}

    # -- writes ---------------------------------------------------------------------------------------

    def apply(self, obj: Mapping[str, Any]) -> JSON:
        """Create or update (whole-object replace, no validation); returns the stored object."""
        res = self.registry.lookup(str(obj.get("kind") or ""), str(obj.get("apiVersion") or "") or None)
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
        with self.cond:
            prev = self.get_locked(res, meta.get("namespace"), name)
            if prev is not None and _comparable(prev) == _comparable(new):
                return copy.deepcopy(prev)
            return copy.deepcopy(self.put_locked(res, new, prev))

    def put_locked(self, res: Resource, new: JSON, prev: JSON | None) -> JSON:
        """Store ``new`` (created when ``prev`` is None) at the next resourceVersion; the caller holds
        ``cond`` and has checked ``prev`` is the current object. Sets uid, creationTimestamp and
        resourceVersion; returns the stored object (shared, do not mutate)."""
        meta = new["metadata"]
        rv = self.rv + 1
        if prev is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
        else:
            meta["uid"] = prev["metadata"]["uid"]
            meta["creationTimestamp"] = prev["metadata"]["creationTimestamp"]
        meta["resourceVersion"] = str(rv)
        meta.pop("managedFields", None)
        key = object_key(res, meta.get("namespace"), meta["name"])
        self._objects.setdefault(res.storage, {})[key] = new
        self._append(Event(rv, res, "MODIFIED" if prev else "ADDED", key, new, prev))
        return new

    def remove_locked(self, res: Resource, namespace: str | None, name: str) -> JSON | None:
        """Delete an object (the caller holds ``cond``); returns it at the deletion's version, or None."""
        key = object_key(res, namespace or "default", name)
        prev = self._objects.get(res.storage, {}).pop(key, None)
        if prev is None:
            return None
        rv = self.rv + 1
        # Upstream the DELETED event carries the last state with the deletion's resourceVersion.
        gone = with_rv(prev, rv)
        self._append(Event(rv, res, "DELETED", key, gone, prev))
        return gone

    def delete(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """Delete an object; returns it (with the deletion's resourceVersion) or None if absent."""
        res = self.registry.lookup(kind)
        with self.cond:
            gone = self.remove_locked(res, namespace, name)
            return copy.deepcopy(gone) if gone is not None else None

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

    def get_locked(self, res: Resource, namespace: str | None, name: str) -> JSON | None:
        """The current object (shared, do not mutate), or None; the caller holds ``cond``."""
        return self._objects.get(res.storage, {}).get(object_key(res, namespace or "default", name))

    def get(self, kind: str, namespace: str | None, name: str, api_version: str | None = None) -> JSON | None:
        """A deep copy of the current object, or None."""
        res = self.registry.lookup(kind, api_version)
        with self.cond:
            obj = self.get_locked(res, namespace, name)
            return copy.deepcopy(as_version(obj, res)) if obj is not None else None

    def current(self, res: Resource) -> tuple[int, list[JSON]]:
        """The current resourceVersion and the kind's objects (shared, do not mutate)."""
        with self.cond:
            return self.rv, list(self._objects.get(res.storage, {}).values())

    def sorted_at(self, res: Resource, rv: int) -> tuple[list[Key], list[JSON]]:
        """The kind's keys and objects as of ``rv``, in key order; raises ``Expired``. Cached per version."""
        with self.cond:
            if rv > self.rv:
                raise ValueError(f"resourceVersion {rv} is in the future (current {self.rv})")
            if rv < self.oldest_rv:
                raise Expired(f"too old resource version: {rv} ({self.oldest_rv})")
            # The state at a retained version never changes, so the cache survives later writes.
            cached = self._sorted_cache.get((res.storage, rv))
            if cached is not None:
                return cached
            state = dict(self._objects.get(res.storage, {}))
            for ev in reversed(self._events[rv - self.oldest_rv :]):
                if ev.res.storage != res.storage:
                    continue
                if ev.type == "ADDED":
                    state.pop(ev.key, None)
                elif ev.prev is not None:
                    state[ev.key] = ev.prev
            keys = sorted(state)
            out = (keys, [state[k] for k in keys])
            if len(self._sorted_cache) >= 8:
                self._sorted_cache.pop(next(iter(self._sorted_cache)))
            self._sorted_cache[(res.storage, rv)] = out
            return out

    def events_after_locked(self, rv: int) -> list[Event]:
        """Events with resourceVersion > rv; the caller holds ``cond``. Raises ``Expired``."""
        if rv < self.oldest_rv:
            raise Expired(f"too old resource version: {rv} ({self.oldest_rv})")
        return self._events[rv - self.oldest_rv :]
