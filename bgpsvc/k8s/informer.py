"""Informers: one list + watch loop per resource kind, on the official ``kubernetes`` client.

Theory of operation (client-go ``tools/cache`` Reflector semantics, STYLE.md section 7). A daemon thread
lists the collection in pages (``limit``/``continue``), replaces the store atomically, marks the informer
synced and watches from the list's resourceVersion with bookmarks allowed. ADDED/MODIFIED/DELETED update
the store; BOOKMARK only advances the resume version. When a stream ends (server timeout) or breaks
(connection cut) the informer watches again from the last version it saw; when the server answers 410
Gone (an ERROR event or status: that version left the history) it lists again, and objects deleted
meanwhile simply vanish with the old store (no tombstones). A continue token that expires mid-list falls
back to one unpaginated list, as client-go's pager does. Connection failures back off exponentially with
jitter; while the API is unreachable the store keeps its last state and ``healthy`` is False.

Responses are read raw (``_preload_content=False``) and parsed with ``json`` straight into the frozen
views of ``bgpsvc.k8s.views``; the client's model classes are never built. ``on_change`` is called from
the informer thread after every change to the store; it must be cheap and thread-safe (the reconciler
passes ``loop.call_soon_threadsafe(event.set)``). Views that compare equal to what is stored (a Node's
status heartbeat, say) are not a change.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from bgpsvc.k8s.views import (
    EndpointSliceView,
    Key,
    NodeView,
    ServiceView,
    endpointslice_from_dict,
    node_from_dict,
    service_from_dict,
)

log = logging.getLogger(__name__)

V = TypeVar("V")
Converter = Callable[[Mapping[str, Any]], V]


def load_api_client(kubeconfig: str | None = None) -> k8s_client.ApiClient:
    """An ``ApiClient``: in-cluster (service account) in a pod without a kubeconfig, else the kubeconfig.

    ``kubeconfig=None`` outside a pod means the client's default (``$KUBECONFIG``, ``~/.kube/config``).
    """
    cfg = k8s_client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=cfg)  # refreshes the bound token itself
    else:
        k8s_config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    return k8s_client.ApiClient(configuration=cfg)


@dataclass(frozen=True, slots=True)
class ResourceKind:
    """How to list/watch one kind with the official client, and its default converter."""

    api: str  # class name in kubernetes.client
    method: str  # the all-namespaces (or cluster-scoped) list function; watch=True makes it a watch
    converter: Converter[Any]


KINDS: dict[str, ResourceKind] = {
    "services": ResourceKind("CoreV1Api", "list_service_for_all_namespaces", service_from_dict),
    "endpointslices": ResourceKind(
        "DiscoveryV1Api", "list_endpoint_slice_for_all_namespaces", endpointslice_from_dict
    ),
    "nodes": ResourceKind("CoreV1Api", "list_node", node_from_dict),
}


class _Expired(Exception):
    """410 Gone: the resume version left the server's history; list again."""


class _WatchError(Exception):
    """An ERROR event other than 410; list again after a backoff (client-go returns from ListAndWatch)."""


class _StreamBroken(Exception):
    """The watch stream failed mid-way (connection cut); watch again from the last version."""


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def iter_lines(resp: Any) -> Iterator[bytes]:
    """Non-empty lines of a (chunked) urllib3 response body, as they arrive."""
    buf = bytearray()
    for chunk in resp.stream(amt=None, decode_content=False):
        buf.extend(chunk)
        start = 0
        while (nl := buf.find(b"\n", start)) >= 0:
            if nl > start:
                yield bytes(buf[start:nl])
            start = nl + 1
        del buf[:start]
    if buf.strip():
        yield bytes(buf)


class Informer(Generic[V]):
    """List + watch one kind into a store of frozen views keyed by (namespace, name)."""

    def __init__(
        self,
        api_client: k8s_client.ApiClient,
        resource: str,
        *,
        converter: Converter[V] | None = None,
        on_change: Callable[[], None] | None = None,
        field_selector: str | None = None,
        label_selector: str | None = None,
        page_size: int = 500,
        watch_timeout: float = 300.0,
        backoff_base: float = 0.8,
        backoff_max: float = 30.0,
        connect_timeout: float = 10.0,
        list_timeout: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        if resource not in KINDS:
            raise ValueError(f"unsupported resource {resource!r} (one of {', '.join(KINDS)})")
        kind = KINDS[resource]
        self.resource = resource
        self._converter: Converter[V] = converter or kind.converter
        self._call = getattr(getattr(k8s_client, kind.api)(api_client), kind.method)
        self._on_change = on_change
        self._selectors = {
            k: v for k, v in (("field_selector", field_selector), ("label_selector", label_selector)) if v
        }
        self.page_size = page_size
        self.watch_timeout = watch_timeout  # client-go: [5, 10) min, randomised so watches spread out
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self.list_timeout = list_timeout
        self._rng = rng or random.Random()

        self._lock = threading.Lock()
        self._store: dict[Key, V] = {}
        self._snap: Mapping[Key, V] | None = None
        self._rv: str | None = None
        self._synced = threading.Event()
        self._healthy = False
        self._relists = 0
        self._last_error: str | None = None
        self._counts = {"lists": 0, "watches": 0, "events": 0, "bookmarks": 0}
        self._failures = 0  # consecutive, without progress in between
        self._expired_streak = 0  # 410s without a watch event in between
        self._stopping = threading.Event()
        self._resp: Any = None
        self._thread: threading.Thread | None = None

    # -- public surface -----------------------------------------------------------------------------

    def start(self) -> Informer[V]:
        """Start the list/watch thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("informer already started")
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.resource}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread: cut the open request so it returns at once, then join (bounded)."""
        self._stopping.set()
        self._abort_request()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def wait_synced(self, timeout: float | None = None) -> bool:
        """Block until the first complete list (or timeout); returns ``synced``."""
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        """True once the first complete list is in the store; stays true."""
        return self._synced.is_set()

    @property
    def healthy(self) -> bool:
        """The last list/watch attempt succeeded (False while the API server is unreachable)."""
        return self._healthy

    @property
    def relists(self) -> int:
        """Lists after the first one (410 Gone, watch errors)."""
        return self._relists

    @property
    def last_error(self) -> str | None:
        """The most recent error, kept after recovery for diagnosis."""
        return self._last_error

    @property
    def resource_version(self) -> str | None:
        """The version the next watch resumes from (advanced by events and BOOKMARKs)."""
        return self._rv

    @property
    def running(self) -> bool:
        """The informer thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def counters(self) -> dict[str, int]:
        """Seen so far: ``lists`` (pages), ``watches``, ``events``, ``bookmarks``, ``relists``."""
        with self._lock:
            return {**self._counts, "relists": self._relists}

    def snapshot(self) -> Mapping[Key, V]:
        """An immutable view of the store, safe to keep and read from any thread.

        Copied at most once per change (the copy is cached until the store changes again).
        """
        with self._lock:
            if self._snap is None:
                self._snap = MappingProxyType(dict(self._store))
            return self._snap

    # -- the loop -------------------------------------------------------------------------------------

    def _run(self) -> None:
        need_list = True
        while not self._stopping.is_set():
            delay = 0.0
            try:
                if need_list:
                    self._list()
                    need_list = False
                self._watch()  # returns when the server ends the stream: watch again at once
                self._failures = self._expired_streak = 0
            except _Expired as e:
                log.info("%s: %s; listing again", self.resource, e)
                self._last_error = f"410 Gone: {e}"
                need_list = True
                # The server answered, so earlier connection failures are over; list again at once unless
                # the previous list's version was already too old (a server that only says 410).
                self._failures = 0
                self._expired_streak += 1
                delay = self._backoff() if self._expired_streak > 1 else 0.0
            except _StreamBroken as e:
                log.info("%s: watch stream broke (%s); watching again from %s", self.resource, e, self._rv)
                self._last_error = f"watch stream broke: {e}"
                delay = self._backoff(immediate_first=True)
            except _WatchError as e:
                log.warning("%s: watch error %s; listing again", self.resource, e)
                self._last_error = f"watch error: {e}"
                need_list = True
                delay = self._backoff()
            except Exception as e:
                if self._stopping.is_set():
                    break
                self._fail(e)
                delay = self._backoff()
            if delay:
                self._stopping.wait(delay)
        log.debug("%s: informer stopped", self.resource)

    def _backoff(self, immediate_first: bool = False) -> float:
        """Jittered exponential backoff over consecutive failures (a cut stream is retried once at once)."""
        self._failures += 1
        if immediate_first and self._failures == 1:
            return 0.0
        delay = min(self.backoff_max, self.backoff_base * 2.0 ** (self._failures - 1))
        return delay * (0.5 + 0.5 * self._rng.random())  # in [delay/2, delay]

    def _fail(self, e: Exception) -> None:
        msg = (
            f"{type(e).__name__}: {e}"
            if not isinstance(e, ApiException)
            else f"HTTP {e.status} {e.reason}".strip()
        )
        if self._healthy:
            log.warning("%s: API server unreachable or failing: %s", self.resource, msg)
        else:
            log.debug("%s: still failing: %s", self.resource, msg)
        self._healthy = False
        self._last_error = msg

    def _abort_request(self) -> None:
        resp = self._resp
        if resp is None:
            return
        try:
            resp.shutdown()  # urllib3 >= 2.3: unblocks a read in another thread
        except Exception:
            conn = getattr(resp, "connection", None)
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def _request(self, timeout: tuple[float, float], **kwargs: Any) -> Any:
        if self._stopping.is_set():
            raise InterruptedError("stopping")
        resp = self._call(_preload_content=False, _request_timeout=timeout, **self._selectors, **kwargs)
        self._resp = resp
        if self._stopping.is_set():  # stop() ran between the call and publishing resp
            self._abort_request()
        return resp

    def _release(self, resp: Any) -> None:
        self._resp = None
        with contextlib.suppress(Exception):
            resp.release_conn()

    # -- list -----------------------------------------------------------------------------------------

    def _list(self) -> None:
        items: dict[Key, V] = {}
        token: str | None = None
        limit = self.page_size
        while True:
            kwargs: dict[str, Any] = {"limit": limit} if limit else {}
            if token:
                kwargs["_continue"] = token
            try:
                resp = self._request((self.connect_timeout, self.list_timeout), **kwargs)
            except ApiException as e:
                if e.status == 410 and token:
                    # The continue token expired mid-list: one full, unpaginated list (client-go pager).
                    log.info("%s: continue token expired; listing without pagination", self.resource)
                    items, token, limit = {}, None, 0
                    continue
                raise
            try:
                body = json.loads(resp.data)
            finally:
                self._release(resp)
            with self._lock:
                self._counts["lists"] += 1
            for obj in body.get("items") or ():
                view = self._convert(obj)
                if view is not None:
                    items[_key(obj)] = view
            meta = body.get("metadata") or {}
            token = meta.get("continue") or None
            if not token:
                break
        rv = str(meta.get("resourceVersion") or "") or None
        first = not self._synced.is_set()
        with self._lock:
            changed = items != self._store
            self._store = items
            if changed:
                self._snap = None
            self._rv = rv
            self._healthy = True
            self._failures = 0
            if not first:
                self._relists += 1
        self._synced.set()
        log.info("%s: listed %d objects at resourceVersion %s", self.resource, len(items), rv)
        if changed or first:
            self._notify()

    def _convert(self, obj: Mapping[str, Any]) -> V | None:
        try:
            return self._converter(obj)
        except Exception:
            log.exception("%s: cannot convert %s; ignored", self.resource, _key(obj))
            return None

    # -- watch ----------------------------------------------------------------------------------------

    def _watch(self) -> None:
        timeout = max(1, int(self.watch_timeout * (1.0 + self._rng.random())))
        try:
            resp = self._request(
                (self.connect_timeout, timeout + 30.0),
                watch=True,
                allow_watch_bookmarks=True,
                resource_version=self._rv,
                timeout_seconds=timeout,
            )
        except ApiException as e:
            if e.status == 410:
                raise _Expired(f"HTTP 410 for resourceVersion {self._rv}") from e
            raise
        self._healthy = True
        with self._lock:
            self._counts["watches"] += 1
        try:
            for line in iter_lines(resp):
                self._handle(json.loads(line))
                self._failures = self._expired_streak = 0  # the stream delivers: failures are over
        except (_Expired, _WatchError):
            raise
        except Exception as e:
            if self._stopping.is_set():
                return
            raise _StreamBroken(f"{type(e).__name__}: {e}") from e
        finally:
            with contextlib.suppress(Exception):
                resp.close()
            self._release(resp)

    def _handle(self, ev: Mapping[str, Any]) -> None:
        kind, obj = ev.get("type"), ev.get("object")
        if not isinstance(obj, Mapping):
            raise _WatchError(f"malformed watch event {str(ev)[:200]}")
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Expired(str(obj.get("message") or "Expired"))
            raise _WatchError(f"{obj.get('code')} {obj.get('reason')}: {obj.get('message')}")
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            with self._lock:
                self._counts["bookmarks"] += 1
                if rv:
                    self._rv = str(rv)
            return
        key = _key(obj)
        changed = False
        if kind in ("ADDED", "MODIFIED"):
            view = self._convert(obj)
            with self._lock:
                self._counts["events"] += 1
                if view is not None and (key not in self._store or self._store[key] != view):
                    self._store[key] = view
                    self._snap = None
                    changed = True
                if rv:
                    self._rv = str(rv)
        elif kind == "DELETED":
            with self._lock:
                self._counts["events"] += 1
                if key in self._store:
                    del self._store[key]
                    self._snap = None
                    changed = True
                if rv:
                    self._rv = str(rv)
        else:
            log.debug("%s: ignoring watch event type %r", self.resource, kind)
        if changed:
            self._notify()

    def _notify(self) -> None:
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:
            log.exception("%s: on_change failed", self.resource)


def service_informer(api_client: k8s_client.ApiClient, **kwargs: Any) -> Informer[ServiceView]:
    """An informer over v1 Services (all namespaces)."""
    return Informer(api_client, "services", converter=service_from_dict, **kwargs)


def endpointslice_informer(api_client: k8s_client.ApiClient, **kwargs: Any) -> Informer[EndpointSliceView]:
    """An informer over discovery.k8s.io/v1 EndpointSlices (all namespaces)."""
    kwargs.setdefault("converter", endpointslice_from_dict)
    return Informer(api_client, "endpointslices", **kwargs)


def node_informer(api_client: k8s_client.ApiClient, **kwargs: Any) -> Informer[NodeView]:
    """An informer over v1 Nodes; ``field_selector="metadata.name=<node>"`` watches one node."""
    return Informer(api_client, "nodes", converter=node_from_dict, **kwargs)
