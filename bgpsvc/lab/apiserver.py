"""An in-process HTTP server that speaks kube-apiserver's protocol for Services, EndpointSlices and Nodes
(read-only over HTTP), CustomResourceDefinitions and the custom resources they define (full CRUD), for
tests and the demo. Standard library only (plus PyYAML for ``load_yaml``).

Theory of operation. Writes come through the Python API (``apply``/``delete``), or over HTTP for CRDs and
custom resources (``bgpsvc.lab.customresource``), into an ``ObjectStore``
that keeps one global resourceVersion and a bounded event history. Each HTTP request runs in its own
thread (``ThreadingHTTPServer``, HTTP/1.1 keep-alive). What follows the Kubernetes API concepts page
("Efficient detection of changes", "Watch bookmarks", "Retrieving large results sets in chunks",
"Resource versions") and the apiserver's cacher where the page is silent:

- List: ``{"kind": "<Kind>List", "apiVersion", "metadata": {"resourceVersion"[, "continue",
  "remainingItemCount"]}, "items"}``; items carry no kind/apiVersion (typed lists omit them). ``limit`` +
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
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import yaml

from bgpsvc.lab import crd as crds
from bgpsvc.lab.customresource import CustomResources
from bgpsvc.lab.discovery import discovery
from bgpsvc.lab.fielderrors import Invalid
from bgpsvc.lab.listwatch import _TRUE, ListWatch, Watcher, decode_continue, encode_continue
from bgpsvc.lab.routing import (
    Handler,
    HTTPServer,
    Route,
    content_type,
    parse_route,
    query,
    read_body,
    send_json,
    send_text,
)
from bgpsvc.lab.selectors import SelectorError, labels_match, parse_label_selector
from bgpsvc.lab.status import HTTPError, bad_request, no_route, not_allowed, not_found, status
from bgpsvc.lab.store import CRD_RESOURCE, JSON, ObjectStore, Resource, as_version

log = logging.getLogger(__name__)
__all__ = ["ApiServer", "HTTPError", "decode_continue", "encode_continue", "status"]
_HEALTH = ("/healthz", "/livez", "/readyz")


class ApiServer(ListWatch):
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
        self._writes = CustomResources(self.store, self._rng)
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # connections, counters, state flags
        self._conns: set[socket.socket] = set()
        self._watchers: set[Watcher] = set()
        self._counts: Counter[str] = Counter()
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
        custom resource goes through the same pruning, defaulting and validation as an HTTP write (an
        invalid one raises ``HTTPError`` whose ``body`` is the 422 Status) and may carry ``status``."""
        kind, api_version = str(obj.get("kind") or ""), str(obj.get("apiVersion") or "")
        if kind == crds.KIND:
            return self.register_crd(obj, replace=True)
        with self.store.cond:
            res = self.store.registry.lookup(kind, api_version or None)
        if not res.custom:
            return self.store.apply(obj)
        return self._apply_custom(res, obj)

    def _apply_custom(self, res: Resource, obj: Mapping[str, Any]) -> JSON:
        crd = self.crds.of(res)
        ver = crd.version(res.api_version) if crd else None
        if crd is None or ver is None:
            raise KeyError(f"{res.api_version} {res.kind} is not served")
        meta = dict(obj.get("metadata") or {})
        ns = str(meta.get("namespace") or "default") if res.namespaced else None
        with self.store.cond:
            cur = self.store.get_locked(crd.storage.resource, ns, str(meta.get("name") or ""))
            if cur is None:
                out, _ = self._writes.create(ver, crd.storage, ns, dict(obj), {})
            else:
                body = {**obj, "metadata": {**meta, "resourceVersion": cur["metadata"]["resourceVersion"]}}
                out, _ = self._writes.update(ver, crd.storage, ns, meta["name"], body, {})
            if ver.status and "status" in obj and out.get("status") != obj["status"]:
                out, _ = self._writes.update(
                    ver,
                    crd.storage,
                    ns,
                    out["metadata"]["name"],
                    {**out, "status": obj["status"]},
                    {},
                    "status",
                )
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
        with self._lock:
            self._conns.discard(sock)

    def _count(self, verb: str) -> None:
        with self._lock:
            self._counts[verb] += 1

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path, q = query(h)
        body = read_body(h) if method != "GET" else b""
        try:
            if method == "GET" and path in _HEALTH:
                self._count("discovery")
                send_text(h, "ok")
                return
            with self.store.cond:
                disc = discovery(path, self.store.registry, self.crds.of) if method == "GET" else None
                route = parse_route(path, self.store.registry) if disc is None else None
            if disc is not None:
                self._count("discovery")
                send_json(h, 200, disc)
            elif route is None:
                raise no_route()
            elif method == "GET":
                self._read(h, route, q)
            elif route.res == CRD_RESOURCE:
                self._write_crd(h, method, route, body)
            else:
                self._write(h, method, route, q, body)
        except HTTPError as e:
            self._count("rejected")
            send_json(h, int(e.body["code"]), e.body, e.headers)
        except Invalid as e:
            self._count("rejected")
            send_json(h, 422, e.status)
        except SelectorError as e:
            self._count("rejected")
            send_json(h, 400, status(400, "BadRequest", str(e)))

    def _read(self, h: BaseHTTPRequestHandler, route: Route, q: Mapping[str, str]) -> None:
        res, ns, name = route.res, route.ns, route.name
        if route.watch or q.get("watch", "") in _TRUE:
            if route.sub:
                raise no_route()
            fs = q.get("fieldSelector") or ""
            if name is not None:
                fs = ",".join(s for s in (fs, f"metadata.name={name}") if s)
            self._count("watch")
            self._watch(h, res, ns, fs, q)
        elif name is None:
            self._count("list")
            send_json(h, 200, self._list(res, ns, q))
        else:
            self._count("get")
            self._check_sub(route)
            with self.store.cond:
                obj = self.store.get_locked(res, ns, name)
                obj = copy.deepcopy(as_version(obj, res)) if obj is not None else None
            if obj is None:
                raise not_found(res, name)
            send_json(h, 200, obj)

    def _check_sub(self, route: Route) -> None:
        if not route.sub:
            return
        crd = self.crds.of(route.res)
        ver = crd.version(route.res.api_version) if crd else None
        if route.sub != "status" or ver is None or not ver.status:
            raise no_route()

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError as e:
            raise bad_request(f"error decoding the request body: {e}") from None

    def _write_crd(self, h: BaseHTTPRequestHandler, method: str, route: Route, body: bytes) -> None:
        if method == "POST" and route.name is None:
            self._count("create")
            obj = self._json(body)
            if not isinstance(obj, dict):
                raise bad_request("the body of the request must be a JSON object")
            send_json(h, 201, self.crds.register(obj))
        elif method == "DELETE" and route.name is not None and not route.sub:
            self._count("delete")
            gone = self.crds.unregister(route.name)
            if gone is None:
                raise not_found(route.res, route.name)
            send_json(h, 200, gone)
        else:
            raise not_allowed()

    def _write(
        self, h: BaseHTTPRequestHandler, method: str, route: Route, q: Mapping[str, str], body: bytes
    ) -> None:
        res, ns, name = route.res, route.ns, route.name
        crd = self.crds.of(res)
        ver = crd.version(res.api_version) if crd else None
        if crd is None or ver is None or (res.namespaced and ns is None):
            raise not_allowed()
        self._check_sub(route)
        storage = crd.storage
        if method == "POST" and name is None and not route.sub:
            self._count("create")
            obj, warnings = self._writes.create(ver, storage, ns, self._json(body), q)
            send_json(h, 201, obj, warnings=warnings)
        elif name is None:
            if method != "DELETE":
                raise not_allowed()
            self._count("delete")
            send_json(h, 200, self._delete_collection(crd, ver, ns, q))
        elif method == "PUT":
            self._count("update")
            obj, warnings = self._writes.update(ver, storage, ns, name, self._json(body), q, route.sub)
            send_json(h, 200, obj, warnings=warnings)
        elif method == "PATCH":
            self._count("patch")
            obj, warnings = self._writes.patch(ver, storage, ns, name, body, content_type(h), q, route.sub)
            send_json(h, 200, obj, warnings=warnings)
        elif method == "DELETE" and not route.sub:
            self._count("delete")
            send_json(h, 200, self._writes.delete(crd, ver, ns, name, self._json(body) if body else None))
        else:
            raise not_allowed()

    def _delete_collection(
        self, crd: crds.Crd, ver: crds.CrdVersion, ns: str | None, q: Mapping[str, str]
    ) -> JSON:
        labels = parse_label_selector(q.get("labelSelector"))
        res = ver.resource
        with self.store.cond:
            _, objs = self.store.current(crd.storage.resource)
            doomed = [
                o["metadata"]
                for o in objs
                if (ns is None or o["metadata"].get("namespace") == ns)
                and labels_match(labels, o["metadata"].get("labels") or {})
            ]
            items = []
            for m in doomed:
                gone = self.store.get_locked(crd.storage.resource, m.get("namespace"), m["name"])
                self._writes.delete(crd, ver, m.get("namespace"), m["name"], None)
                if gone is not None:
                    items.append(as_version(copy.deepcopy(gone), res))
            meta = {"resourceVersion": str(self.store.rv)}
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}
