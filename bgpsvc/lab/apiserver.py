"""An in-process HTTP server that speaks kube-apiserver's list/watch protocol for Services, EndpointSlices
and Nodes, for tests and the demo. Standard library only (plus PyYAML for ``load_yaml``).

Theory of operation. Writes come through the Python API (``apply``/``delete``) into an ``ObjectStore``
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
  ``sendInitialEvents=true`` (watch-list) ends its initial ADDED events with a bookmark annotated
  ``k8s.io/initial-events-end: "true"``.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import json
import logging
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from bgpsvc.lab.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from bgpsvc.lab.store import JSON, RESOURCES, Event, Expired, ObjectStore, Resource, resource_for, with_rv

log = logging.getLogger(__name__)

_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})  # Go's strconv.ParseBool
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
CONTINUE_VERSION = "meta.k8s.io/v1"
MSG_LIST_EXPIRED = "The resourceVersion for the provided list is too old."
MSG_INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)
PRE_TIMEOUT_BOOKMARK = 2.0  # seconds before the watch deadline (cacher nextBookmarkTime)


def status(code: int, reason: str, message: str, **extra: Any) -> JSON:
    """A ``metav1.Status`` failure, as the API server returns it."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        **extra,
        "code": code,
    }


class HTTPError(Exception):
    """A request the server answers with a Status."""

    def __init__(self, body: JSON, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(body.get("message"))
        self.body = body
        self.headers = dict(headers or {})


def _bad_request(message: str) -> HTTPError:
    return HTTPError(status(400, "BadRequest", message))


def _invalid(message: str) -> HTTPError:
    return HTTPError(
        status(
            422,
            "Invalid",
            f'ListOptions.meta.k8s.io "" is invalid: {message}',
            details={"group": "meta.k8s.io", "kind": "ListOptions"},
        )
    )


def encode_continue(key: str, rv: int) -> str:
    """Upstream continue token: base64url (no padding) of ``{"v","rv","start"}``."""
    raw = json.dumps({"v": CONTINUE_VERSION, "rv": rv, "start": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def decode_continue(token: str) -> tuple[str, int]:
    """(start key, resourceVersion) of a continue token; raises ``HTTPError`` 400 when malformed."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(data, dict) or data.get("v") != CONTINUE_VERSION:
            raise ValueError("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        rv, start = data.get("rv"), data.get("start")
        if not isinstance(rv, int) or rv == 0 or not isinstance(start, str):
            raise ValueError("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    except (ValueError, binascii.Error) as e:
        raise _bad_request(f"continue key is not valid: {e}") from None
    return start, rv


def _parse_rv(text: str) -> int:
    try:
        rv = int(text)
    except ValueError:
        raise _bad_request(f"invalid resource version {text!r}") from None
    if rv < 0:
        raise _bad_request(f"invalid resource version {text!r}")
    return rv


def _route(path: str) -> tuple[Resource, str | None, str | None, bool] | None:
    """(resource, namespace, name, watch-prefix) for a resource URL, else None."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        gv, rest = "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    watch = bool(rest) and rest[0] == "watch"
    if watch:
        rest = rest[1:]
    ns = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        ns, rest = rest[1], rest[2:]
    if not 1 <= len(rest) <= 2:
        return None
    res = RESOURCES.get(rest[0])
    if res is None or res.api_version != gv or (ns is not None and not res.namespaced):
        return None
    name = rest[1] if len(rest) == 2 else None
    if name is not None and res.namespaced and ns is None:
        return None
    return res, ns, name, watch


def _list_item(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _obj_bytes(ev: Event) -> bytes:
    cached = ev._json.get("obj")
    if cached is None:
        cached = ev._json["obj"] = json.dumps(ev.obj, separators=(",", ":")).encode()
    return cached


def _event_line(kind: str, obj_json: bytes) -> bytes:
    return b'{"type":"%s","object":%s}\n' % (kind.encode(), obj_json)


def _discovery(path: str) -> JSON | None:
    def resources(gv: str) -> JSON:
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": gv,
            "resources": [
                {
                    "name": r.plural,
                    "singularName": r.kind.lower(),
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "list", "watch"],
                }
                for r in RESOURCES.values()
                if r.api_version == gv
            ],
        }

    if path == "/version":
        return {"major": "1", "minor": "31", "gitVersion": "v1.31.0-bgpsvc-lab", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if path == "/apis":
        groups = sorted({r.api_version for r in RESOURCES.values() if "/" in r.api_version})
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g.split("/")[0],
                    "versions": [{"groupVersion": g, "version": g.split("/")[1]}],
                    "preferredVersion": {"groupVersion": g, "version": g.split("/")[1]},
                }
                for g in groups
            ],
        }
    if path == "/api/v1":
        return resources("v1")
    for gv in {r.api_version for r in RESOURCES.values()}:
        if path == f"/apis/{gv}":
            return resources(gv)
    return None


class _Watcher:
    """One open watch connection, so ``drop_watches``/``pause`` can cut it."""

    def __init__(self, sock: socket.socket, bookmarks: bool) -> None:
        self.sock = sock
        self.bookmarks = bookmarks
        self.aborted = False


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    api: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("lab apiserver: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "bgpsvc-lab-apiserver"
    server: _HTTPServer

    def handle(self) -> None:
        api = self.server.api
        if not api._track(self.connection):
            return  # paused or stopped between accept() and here: behave as an unreachable server
        # As Go's net/http: no Nagle, or a response written as headers + body waits out a delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            super().handle()
        except OSError:
            pass  # connection cut by pause()/drop_watches()/the client
        finally:
            api._untrack(self.connection)

    def do_GET(self) -> None:
        self.server.api._handle_get(self)

    def _not_allowed(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.api._send_json(
            self,
            405,
            status(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            ),
        )

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("lab apiserver: " + format, *args)


class ApiServer:
    """kube-apiserver list/watch semantics over an in-memory store; see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        history: int = 1000,
        bookmark_interval: float = 5.0,
        watch_timeout: float = 1800.0,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.bookmark_interval = bookmark_interval
        self.watch_timeout = watch_timeout  # default when the client sends no timeoutSeconds (x [1, 2))
        self._rng = rng or random.Random()
        self.store = ObjectStore(history=history)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # connections, counters, state flags
        self._conns: set[socket.socket] = set()
        self._watchers: set[_Watcher] = set()
        self._counts: Counter[str] = Counter()
        self._paused = False
        self._stopped = False
        self._bookmark_gen = 0  # bumped by send_bookmarks(); guarded by store.cond

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
                httpd = _HTTPServer((self.host, self._port), _Handler)
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
        """Create or replace an object (kind Service, EndpointSlice or Node); returns the stored object."""
        return self.store.apply(obj)

    def delete(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """Delete an object; returns its last state, or None if it did not exist."""
        return self.store.delete(kind, namespace, name)

    def get(self, kind: str, namespace: str | None, name: str) -> JSON | None:
        """The stored object, or None."""
        return self.store.get(kind, namespace, name)

    def load_yaml(self, source: str | Path, strict: bool = False) -> list[JSON]:
        """Apply every served object in a (multi-document) manifest, given as text or a path.

        ``kind: List`` documents are expanded; kinds this server does not serve are skipped unless strict.
        """
        if isinstance(source, Path) or ("\n" not in source and Path(source).is_file()):
            source = Path(source).read_text()
        out = []
        for doc in yaml.safe_load_all(source):
            if not doc:
                continue
            items = (doc.get("items") or []) if str(doc.get("kind", "")).endswith("List") else [doc]
            for item in items:
                try:
                    resource_for(str(item.get("kind") or ""))
                except KeyError:
                    if strict:
                        raise
                    log.info("lab apiserver: skipping unsupported kind %s", item.get("kind"))
                    continue
                out.append(self.apply(item))
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
        """Requests served by verb: ``list``, ``watch``, ``get``, ``discovery``, ``rejected``."""
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

    def _send_json(
        self, h: BaseHTTPRequestHandler, code: int, body: JSON, headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Cache-Control", "no-cache, private")
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _handle_get(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            path = url.path.rstrip("/") or "/"
            if path in ("/healthz", "/livez", "/readyz"):
                self._count("discovery")
                data = b"ok"
                h.send_response(200)
                h.send_header("Content-Type", "text/plain; charset=utf-8")
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data)
                return
            disc = _discovery(path)
            if disc is not None:
                self._count("discovery")
                self._send_json(h, 200, disc)
                return
            route = _route(path)
            if route is None:
                raise HTTPError(
                    status(404, "NotFound", "the server could not find the requested resource", details={})
                )
            res, ns, name, watch_prefix = route
            if watch_prefix or q.get("watch", "") in _TRUE:
                fs = q.get("fieldSelector") or ""
                if name is not None:
                    fs = ",".join(s for s in (fs, f"metadata.name={name}") if s)
                self._count("watch")
                self._watch(h, res, ns, fs, q)
            elif name is not None:
                self._count("get")
                obj = self.store.get(res.plural, ns, name)
                if obj is None:
                    raise HTTPError(
                        status(
                            404,
                            "NotFound",
                            f'{res.plural} "{name}" not found',
                            details={
                                "name": name,
                                "group": res.api_version.rpartition("/")[0],
                                "kind": res.plural,
                            },
                        )
                    )
                self._send_json(h, 200, obj)
            else:
                self._count("list")
                self._send_json(h, 200, self._list(res, ns, q))
        except HTTPError as e:
            self._count("rejected")
            self._send_json(h, int(e.body["code"]), e.body, e.headers)
        except SelectorError as e:
            self._count("rejected")
            self._send_json(h, 400, status(400, "BadRequest", str(e)))

    # -- list -----------------------------------------------------------------------------------------

    def _list(self, res: Resource, ns: str | None, q: Mapping[str, str]) -> JSON:
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"), res.plural)
        try:
            limit = max(0, int(q.get("limit") or 0))
        except ValueError:
            raise _bad_request(f"invalid limit {q.get('limit')!r}") from None
        token, rv_text = q.get("continue") or "", q.get("resourceVersion") or ""
        match = q.get("resourceVersionMatch")
        if match:
            if match not in ("NotOlderThan", "Exact"):
                raise _invalid(
                    f'resourceVersionMatch: Unsupported value: "{match}": supported values: '
                    '"Exact", "NotOlderThan", ""'
                )
            if not rv_text:
                raise _invalid(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless "
                    "resourceVersion is provided"
                )
            if token:
                raise _invalid(
                    "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when "
                    "continue is provided"
                )
            if match == "Exact" and rv_text == "0":
                raise _invalid(
                    'resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden '
                    'for resourceVersion "0"'
                )
        start = ""
        with self.store.cond:
            current, oldest = self.store.rv, self.store.oldest_rv
        if token:
            if rv_text not in ("", "0"):
                raise _bad_request("specifying resource version is not allowed when using continue")
            start, snap = decode_continue(token)
            if snap == -1:  # an inconsistent-continue token handed out with a 410: latest state
                snap = current
            elif snap < oldest:
                raise HTTPError(
                    status(
                        410,
                        "Expired",
                        MSG_INCONSISTENT_CONTINUE,
                        metadata={"continue": encode_continue(start, -1)},
                    )
                )
        elif rv_text in ("", "0"):
            snap = current  # "Most Recent" and "Any" are the same thing for a single in-memory store
        else:
            want = _parse_rv(rv_text)
            exact = match == "Exact" or (limit > 0 and not match)
            if want > current:
                current = self._wait_for_rv(want)
            if exact:
                if want < oldest:
                    raise HTTPError(status(410, "Expired", MSG_LIST_EXPIRED))
                snap = want
            else:
                snap = current
        try:
            keys, objs = self.store.sorted_at(res, snap)
        except Expired:
            raise HTTPError(status(410, "Expired", MSG_LIST_EXPIRED)) from None
        lo, hi = 0, len(keys)
        if ns is not None:
            lo, hi = bisect.bisect_left(keys, ns + "/"), bisect.bisect_left(keys, ns + "0")  # "0" follows "/"
        if start:
            lo = max(lo, bisect.bisect_left(keys, start))
        items: list[JSON] = []
        i = lo
        while i < hi and (not limit or len(items) < limit):
            obj = objs[i]
            if (not labels or labels_match(labels, obj["metadata"].get("labels") or {})) and (
                not fields or fields_match(fields, obj)
            ):
                items.append(_list_item(obj))
            i += 1
        meta: JSON = {"resourceVersion": str(snap)}
        if limit and i < hi:
            meta["continue"] = encode_continue(keys[i - 1] + "\x00", snap)
            if not labels and not fields:
                meta["remainingItemCount"] = hi - i
        return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}

    def _wait_for_rv(self, want: int, timeout: float = 3.0) -> int:
        """Wait briefly for a future resourceVersion, as upstream does, then 504 ``Too large``."""
        with self.store.cond:
            if not self.store.cond.wait_for(lambda: self.store.rv >= want, timeout):
                causes = [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
                body = status(
                    504,
                    "Timeout",
                    f"Too large resource version: {want}, current: {self.store.rv}",
                    details={"causes": causes, "retryAfterSeconds": 1},
                )
                raise HTTPError(body, {"Retry-After": "1"})
            return self.store.rv

    # -- watch ----------------------------------------------------------------------------------------

    def _watch(
        self, h: BaseHTTPRequestHandler, res: Resource, ns: str | None, fs: str, q: Mapping[str, str]
    ) -> None:
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(fs, res.plural)
        bookmarks = q.get("allowWatchBookmarks", "") in _TRUE
        rv_text, match = q.get("resourceVersion") or "", q.get("resourceVersionMatch")
        initial_events = q.get("sendInitialEvents")
        if initial_events is not None:
            if match != "NotOlderThan":
                raise _invalid(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                    "resourceVersionMatch to NotOlderThan"
                )
            if not bookmarks:
                raise _invalid(
                    "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting "
                    "allowWatchBookmarks to true"
                )
        elif match:
            raise _invalid("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch")
        try:
            timeout = float(q.get("timeoutSeconds") or 0)
        except ValueError:
            raise _bad_request(f"invalid timeoutSeconds {q.get('timeoutSeconds')!r}") from None
        if timeout <= 0:
            timeout = self.watch_timeout * (1.0 + self._rng.random())
        send_initial = initial_events in _TRUE if initial_events is not None else rv_text in ("", "0")
        want = 0 if rv_text in ("", "0") else _parse_rv(rv_text)

        def passes(obj: JSON) -> bool:
            meta = obj["metadata"]
            return (
                (ns is None or meta.get("namespace") == ns)
                and (not labels or labels_match(labels, meta.get("labels") or {}))
                and (not fields or fields_match(fields, obj))
            )

        lines: list[bytes] = []
        watcher = _Watcher(h.connection, bookmarks)
        watcher.aborted = self._paused or self._stopped  # raced with pause(): behave as cut
        with self.store.cond:
            if send_initial:
                pos = self.store.rv
                _, objs = self.store.sorted_at(res, pos)
                lines = [
                    _event_line("ADDED", json.dumps(o, separators=(",", ":")).encode())
                    for o in objs
                    if passes(o)
                ]
                if initial_events in _TRUE:
                    lines.append(self._bookmark_line(res, pos, initial_end=True))
            elif want < self.store.oldest_rv:
                pos = -1
                err = status(410, "Expired", f"too old resource version: {want} ({self.store.oldest_rv})")
                lines = [_event_line("ERROR", json.dumps(err, separators=(",", ":")).encode())]
            else:
                pos = want
            gen = self._bookmark_gen
            if pos >= 0:
                self._watchers.add(watcher)
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Cache-Control", "no-cache, private")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()  # flushes: the client's call returns before any event, as upstream
            for line in lines:
                self._chunk(h, line)
            if pos >= 0:
                self._stream(
                    h, res, watcher, pos=pos, gen=gen, passes=passes, deadline=time.monotonic() + timeout
                )
            if watcher.aborted:
                h.close_connection = True
                return
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            h.close_connection = True
        finally:
            with self.store.cond:
                self._watchers.discard(watcher)

    def _stream(
        self,
        h: BaseHTTPRequestHandler,
        res: Resource,
        watcher: _Watcher,
        *,
        pos: int,
        gen: int,
        passes: Callable[[JSON], bool],
        deadline: float,
    ) -> None:
        cond = self.store.cond
        now = time.monotonic()
        inf = float("inf")
        next_bookmark = now + self.bookmark_interval if watcher.bookmarks else inf
        pre_timeout = deadline - PRE_TIMEOUT_BOOKMARK if watcher.bookmarks else inf
        if pre_timeout <= now:
            pre_timeout = inf  # too short a watch for a pre-timeout bookmark (nextBookmarkTime returns false)
        while True:
            with cond:
                while True:
                    now = time.monotonic()
                    if watcher.aborted or self.store.rv > pos or now >= deadline:
                        break
                    due = now >= min(next_bookmark, pre_timeout)
                    if watcher.bookmarks and (gen != self._bookmark_gen or due):
                        break
                    cond.wait(min(deadline, next_bookmark, pre_timeout) - now)
                if watcher.aborted:
                    return
                try:
                    # pos may be ahead of the store (a watch from a future version waits for it).
                    events = list(self.store.events_after_locked(pos)) if self.store.rv > pos else []
                except Expired:
                    return  # fell behind the history (a stalled reader): end, the client re-watches
                ahead = pos > self.store.rv  # never bookmark a version the store has not reached
                pos = max(pos, self.store.rv)
                bookmark_due = watcher.bookmarks and (
                    gen != self._bookmark_gen or now >= next_bookmark or now >= pre_timeout
                )
                gen = self._bookmark_gen
            for ev in events:
                line = self._convert(ev, res, passes)
                if line is not None:
                    self._chunk(h, line)
            if bookmark_due:
                if not ahead:
                    self._chunk(h, self._bookmark_line(res, pos))
                if now >= pre_timeout:
                    pre_timeout = inf
                next_bookmark = now + self.bookmark_interval
            if now >= deadline:
                return

    @staticmethod
    def _convert(ev: Event, res: Resource, passes: Callable[[JSON], bool]) -> bytes | None:
        """The watch event this write means to a watcher with these selectors (cacher semantics)."""
        if ev.res is not res:
            return None
        cur = ev.type != "DELETED" and passes(ev.obj)
        old = ev.prev is not None and passes(ev.prev)
        if cur:
            return _event_line("MODIFIED" if old else "ADDED", _obj_bytes(ev))
        if not old:
            return None
        if ev.type == "DELETED":
            return _event_line("DELETED", _obj_bytes(ev))
        assert ev.prev is not None
        return _event_line("DELETED", json.dumps(with_rv(ev.prev, ev.rv), separators=(",", ":")).encode())

    @staticmethod
    def _bookmark_line(res: Resource, rv: int, initial_end: bool = False) -> bytes:
        meta: JSON = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
        return _event_line("BOOKMARK", json.dumps(obj, separators=(",", ":")).encode())

    @staticmethod
    def _chunk(h: BaseHTTPRequestHandler, data: bytes) -> None:
        h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
