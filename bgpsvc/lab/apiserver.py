"""An in-process HTTP server that speaks kube-apiserver's protocol for Services, EndpointSlices, Nodes and
Secrets (read-only over HTTP), Leases, CustomResourceDefinitions and the custom resources they define (full
CRUD), for tests and the demo. Standard library only (plus PyYAML for ``load_yaml``).

Theory of operation. Writes come through the Python API (``apply``/``delete``), or over HTTP for Leases,
CRDs and custom resources (``bgpsvc.lab.customresource``), into an ``ObjectStore`` that keeps one global
resourceVersion and a bounded event history. Each HTTP request runs in its own thread
(``ThreadingHTTPServer``, HTTP/1.1 keep-alive). What follows the Kubernetes API concepts page
("Efficient detection of changes", "Watch bookmarks", "Retrieving large results sets in chunks",
"Resource versions") and the apiserver's cacher where the page is silent:

- List: ``{"kind": "<Kind>List", "apiVersion", "metadata": {"resourceVersion"[, "continue",
  "remainingItemCount"]}, "items"}``; items carry no kind/apiVersion (typed lists omit them; custom
  resources' unstructured lists keep them). ``limit`` +
  ``continue`` page through a consistent snapshot: the token is base64url(JSON ``{"v":"meta.k8s.io/v1",
  "rv":N,"start":"<next key>"}``) as upstream, and every page is served at ``rv``. A token whose version
  left the history gets 410 ``Expired`` plus an inconsistent-continue token (``rv:-1``) in the Status.
  resourceVersion/resourceVersionMatch follow the docs' table (unset: most recent; ``0``: any; with limit
  or ``Exact``: exact, 410 when compacted; ``NotOlderThan``: at least, 504 when in the future).
- Watch (``watch=true|1`` or ``/watch/`` paths): 200, ``Transfer-Encoding: chunked``, one JSON event
  per chunk/line. resourceVersion unset or ``0``: synthetic ADDED for the current state, then live; a
  version: the events after it from the history, then live; older than the history: a single ERROR
  event carrying a 410 ``Expired`` Status, then the stream ends (the cacher's ``newErrWatcher``).
  With selectors, an object that starts matching is ADDED, one that stops matching is DELETED carrying
  its previous content at the event's resourceVersion (cacher ``convertToWatchEvent``). BOOKMARKs (only
  with ``allowWatchBookmarks=true``) carry kind/apiVersion/metadata.resourceVersion; they are sent every
  ``bookmark_interval``, 2 s before the watch deadline (as the cacher does), and on ``send_bookmarks()``.
  ``timeoutSeconds`` ends the stream cleanly (terminating chunk); unset, a random 30-60 min as upstream.
- CRDs: ``POST``/``GET``/``DELETE /apis/apiextensions.k8s.io/v1/customresourcedefinitions``, or
  ``register_crd``/``load_manifests``/``ApiServer(manifests=...)``. Once registered, the resource is served
  (and listed in discovery) at ``/apis/<group>/<version>/[namespaces/<ns>/]<plural>`` with create, get,
  list, watch, update, patch (merge and JSON patch), delete, deletecollection and the ``/status``
  subresource; bodies are pruned, defaulted and validated against the version's structural schema and
  CEL rules (``bgpsvc.lab.validation``). Deleting a CRD deletes its objects.
- Leases (``coordination.k8s.io/v1``, for leader election) are served always, through the same machinery
  from a CRD-shaped definition (``bgpsvc.lab.coordination``) that no ``customresourcedefinitions`` object
  shows and no CRD can replace or delete. Known differences from upstream: a Lease gets
  ``metadata.generation`` (upstream leaves it unset), and a strategic merge patch is applied as a JSON
  merge patch (a Lease's spec has no lists, so only metadata lists such as finalizers differ).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from bgpsvc.lab import crd as crds
from bgpsvc.lab.coordination import LEASE, canonical_lease
from bgpsvc.lab.customresource import CustomResources, Target
from bgpsvc.lab.handlers import Handlers
from bgpsvc.lab.listwatch import ListWatch, Watcher, decode_continue, encode_continue
from bgpsvc.lab.routing import (
    Handler,
    HTTPServer,
)
from bgpsvc.lab.status import HTTPError, status
from bgpsvc.lab.store import CRD_RESOURCE, JSON, ObjectStore, Resource

log = logging.getLogger(__name__)
#: ``struct tcp_info`` (linux/tcp.h): ``tcpi_bytes_acked`` and ``tcpi_bytes_received``, both u64, at these
#: offsets since Linux 4.1/4.2. Read for counting only; the connection is not touched otherwise.
_TCP_INFO_BYTES = struct.Struct("=QQ")
_TCP_INFO_BYTES_AT = 120
__all__ = ["ApiServer", "HTTPError", "decode_continue", "encode_continue", "status"]


class ApiServer(ListWatch, Handlers):
    """kube-apiserver semantics over an in-memory store; see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        history: int = 1000,
        bookmark_interval: float = 5.0,
        watch_timeout: float = 1800.0,
        rng: random.Random | None = None,
        manifests: Iterable[str | Path] = (),
    ) -> None:
        self.host = host
        self._port = port
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout  # default when the client sends no timeoutSeconds (x [1, 2))
        self._rng = rng or random.Random()
        self.store = ObjectStore(history=history)
        self.crds = crds.CrdRegistry(self.store)
        self.crds.register_builtin(LEASE, canonical_lease)
        self._writes = CustomResources(self.store, self._rng)
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # connections, counters, state flags
        self._conns: set[socket.socket] = set()
        self._watchers: set[Watcher] = set()
        self._counts: Counter[str] = Counter()
        self._closed_bytes = [0, 0]  # (sent, received) of connections already closed
        self._paused = False
        self._stopped = False
        self._bookmark_gen = 0  # bumped by send_bookmarks(); guarded by store.cond
        self.load_manifests(*manifests)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> ApiServer:
        """Bind and serve in a daemon thread; returns self."""
        with self._lock:
            self._paused = self._stopped = False
        self._serve()
        return self

    def _serve(self) -> None:
        deadline = time.monotonic() + 5.0
        while True:
            try:
                httpd = HTTPServer((self.host, self._port), Handler)
                break
            except OSError:
                if self._port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # the same port after pause(): a lingering socket may hold it briefly
        httpd.api = self
        self._port = int(httpd.server_address[1])
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"lab-apiserver:{self._port}",
            daemon=True,
        )
        self._thread.start()

    def _close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        with self._lock:
            conns = list(self._conns)
        self._abort_watches()
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Stop serving and cut every connection."""
        with self._lock:
            self._stopped = True
        self._close()

    def pause(self) -> None:
        """Become unreachable: close the listener (connects are refused) and cut every open connection."""
        with self._lock:
            self._paused = True
        self._close()

    def resume(self) -> None:
        """Serve again on the same port after ``pause()``."""
        with self._lock:
            self._paused = False
        if self._httpd is None:
            self._serve()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``."""
        return f"http://{self.host}:{self._port}"

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """Write a kubeconfig that points clients at this server (plain http, no credentials)."""
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [{"name": "bgpsvc-lab", "cluster": {"server": self.url}}],
            "users": [{"name": "bgpsvc-lab", "user": {}}],
            "contexts": [
                {
                    "name": "bgpsvc-lab",
                    "context": {"cluster": "bgpsvc-lab", "user": "bgpsvc-lab", "namespace": namespace},
                }
            ],
            "current-context": "bgpsvc-lab",
        }
        out = Path(path)
        out.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return out

    # -- control API --------------------------------------------------------------------------------

    def apply(self, obj: Mapping[str, Any]) -> JSON:
        """Create or replace an object; returns the stored object.

        Built-in kinds are stored as given. A CustomResourceDefinition is registered (or replaced). A
        custom resource, or a Lease, goes through the same pruning, defaulting and validation as an HTTP
        write (an invalid one raises ``Invalid``, whose ``status`` is the 422 Status) and may carry
        ``status`` where its version has that subresource."""
        kind, api_version = str(obj.get("kind") or ""), str(obj.get("apiVersion") or "")
        if kind == crds.KIND:
            return self.register_crd(obj, replace=True)
        with self.store.cond:
            res = self.store.registry.lookup(kind, api_version or None)
        if self.crds.of(res) is None:
            return self.store.apply(obj)
        return self._apply_custom(res, obj)

    def _apply_custom(self, res: Resource, obj: Mapping[str, Any]) -> JSON:
        crd = self.crds.of(res)
        ver = crd.version(res.api_version) if crd else None
        if crd is None or ver is None:
            raise KeyError(f"{res.api_version} {res.kind} is not served")
        meta = dict(obj.get("metadata") or {})
        ns = str(meta.get("namespace") or "default") if res.namespaced else None
        name = str(meta.get("name") or "")
        with self.store.cond:
            cur = self.store.get_locked(crd.storage.resource, ns, name)
            if cur is None:
                out, _ = self._writes.create(Target(crd, ver, ns), dict(obj), {})
            else:
                body = {**obj, "metadata": {**meta, "resourceVersion": cur["metadata"]["resourceVersion"]}}
                out, _ = self._writes.update(Target(crd, ver, ns, name), body, {})
            if ver.status and "status" in obj and out.get("status") != obj["status"]:
                t = Target(crd, ver, ns, out["metadata"]["name"])
                out, _ = self._writes.update(t, {**out, "status": obj["status"]}, {}, "status")
            return out

    def register_crd(self, obj: Mapping[str, Any], replace: bool = False) -> JSON:
        """Register a CustomResourceDefinition (a dict as in its YAML); returns the stored CRD. Raises
        ``Invalid`` (a ``ValueError`` naming every bad field) or, unless ``replace``, ``HTTPError`` 409."""
        return self.crds.register(obj, replace=replace)

    def delete(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """Delete an object now (finalizers are not honoured; a CRD takes its objects with it); returns
        its last state, or None if it did not exist."""
        if kind in (crds.KIND, CRD_RESOURCE.plural):
            return self.crds.unregister(name)
        return self.store.delete(kind, namespace, name)

    def get(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """The stored object, or None."""
        return self.store.get(kind, namespace, name)

    def load_yaml(self, source: str | Path, strict: bool = False) -> list[JSON]:
        """Apply every served object in a (multi-document) manifest, given as text or a path.

        ``kind: List`` documents are expanded; CRDs are registered before the other objects; kinds this
        server does not serve are skipped unless strict."""
        if isinstance(source, Path) or ("\n" not in source and Path(source).is_file()):
            source = Path(source).read_text()
        items: list[Mapping[str, Any]] = []
        for doc in yaml.safe_load_all(source):
            if doc:
                items.extend((doc.get("items") or []) if str(doc.get("kind", "")).endswith("List") else [doc])
        ordered = [i for i in items if i.get("kind") == crds.KIND] + [
            i for i in items if i.get("kind") != crds.KIND
        ]
        out = []
        for item in ordered:
            try:
                with self.store.cond:
                    self.store.registry.lookup(
                        str(item.get("kind") or ""), str(item.get("apiVersion") or "") or None
                    )
            except KeyError:
                if strict:
                    raise
                log.info("lab apiserver: skipping unsupported kind %s", item.get("kind"))
                continue
            out.append(self.apply(item))
        return out

    def load_manifests(self, *paths: str | Path) -> list[JSON]:
        """``load_yaml(strict=True)`` each file, or each ``*.yaml``/``*.yml`` file of a directory in name
        order (e.g. the project's CRD directory); returns the stored objects."""
        out: list[JSON] = []
        for p in map(Path, paths):
            files = sorted([*p.glob("*.yaml"), *p.glob("*.yml")]) if p.is_dir() else [p]
            for f in files:
                out.extend(self.load_yaml(f, strict=True))
        return out

    def compact(self) -> None:
        """Drop the event history: watches and continue tokens from older versions get 410 Gone."""
        self.store.compact()

    @property
    def resource_version(self) -> str:
        """The current global resourceVersion."""
        with self.store.cond:
            return str(self.store.rv)

    def send_bookmarks(self) -> None:
        """Send a BOOKMARK now on every open watch that allows them."""
        with self.store.cond:
            self._bookmark_gen += 1
            self.store.cond.notify_all()

    def drop_watches(self) -> int:
        """Abruptly close every open watch connection (no terminating chunk); returns how many."""
        return self._abort_watches()

    def _abort_watches(self) -> int:
        with self.store.cond:
            watchers = [w for w in self._watchers if not w.aborted]
            for w in watchers:
                w.aborted = True
            self.store.cond.notify_all()
        for w in watchers:
            with contextlib.suppress(OSError):
                w.sock.shutdown(socket.SHUT_RDWR)
        return len(watchers)

    @property
    def open_watches(self) -> int:
        """Watch streams currently open (cut ones are not counted while their threads wind down)."""
        with self.store.cond:
            return sum(1 for w in self._watchers if not w.aborted)

    def stats(self) -> dict[str, int]:
        """Requests served by verb: ``list``, ``watch``, ``get``, ``create``, ``update``, ``patch``,
        ``delete``, ``discovery``, ``rejected``."""
        with self._lock:
            return dict(self._counts)

    def traffic(self) -> dict[str, int] | None:
        """Bytes sent to and received from clients over every connection so far (open ones up to now,
        closed ones up to their close), from the kernel's per-socket TCP counters: ``sent`` counts what
        clients acknowledged (headers, bodies, watch events). None where ``TCP_INFO`` lacks them."""
        if not hasattr(socket, "TCP_INFO"):
            return None
        with self._lock:
            conns = list(self._conns)
            sent, received = self._closed_bytes
        for sock in conns:
            got = _tcp_bytes(sock)
            if got is not None:  # None: it closed meanwhile, and the next reading counts it as closed
                sent, received = sent + got[0], received + got[1]
        return {"sent": sent, "received": received}

    @property
    def lists(self) -> int:
        """List requests served (each page counts)."""
        return self.stats().get("list", 0)

    @property
    def watches(self) -> int:
        """Watch requests served."""
        return self.stats().get("watch", 0)

    # -- HTTP plumbing ------------------------------------------------------------------------------

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._paused or self._stopped:
                return False
            self._conns.add(sock)
            return True

    def _untrack(self, sock: socket.socket) -> None:
        got = _tcp_bytes(sock)
        with self._lock:
            if sock in self._conns and got is not None:
                self._closed_bytes[0] += got[0]
                self._closed_bytes[1] += got[1]
            self._conns.discard(sock)


def _tcp_bytes(sock: socket.socket) -> tuple[int, int] | None:
    """(bytes acked by the peer, bytes received) of a TCP socket, or None (closed, not Linux, old kernel)."""
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except (OSError, AttributeError):
        return None
    if len(raw) < _TCP_INFO_BYTES_AT + _TCP_INFO_BYTES.size:
        return None
    sent, received = _TCP_INFO_BYTES.unpack_from(raw, _TCP_INFO_BYTES_AT)
    return int(sent), int(received)
