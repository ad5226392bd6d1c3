"""HTTP plumbing of the lab API server: resource URLs (``/api/v1/...``, ``/apis/<group>/<version>/
[namespaces/<ns>/]<plural>[/<name>[/<subresource>]]``, the legacy ``/watch/`` prefix), the threaded
HTTP/1.1 server and its request handler, and JSON responses."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from bgpsvc.lab.store import JSON, Registry, Resource

if TYPE_CHECKING:
    from bgpsvc.lab.apiserver import ApiServer

log = logging.getLogger("bgpsvc.lab.apiserver")


@dataclass(frozen=True, slots=True)
class Route:
    """A request URL resolved to a served resource."""

    res: Resource
    ns: str | None
    name: str | None
    sub: str  # "" or a subresource ("status")
    watch: bool  # the legacy /watch/ prefix


def parse_route(path: str, registry: Registry) -> Route | None:
    """The resource a URL path names, or None."""
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
    if not 1 <= len(rest) <= 3:
        return None
    res = registry.find(gv, rest[0])
    if res is None or (ns is not None and not res.namespaced):
        return None
    name = rest[1] if len(rest) >= 2 else None
    if name is not None and res.namespaced and ns is None:
        return None
    return Route(res, ns, name, rest[2] if len(rest) == 3 else "", watch)


def query(h: BaseHTTPRequestHandler) -> tuple[str, dict[str, str]]:
    """(path without trailing slash, last value of each query parameter)."""
    url = urlsplit(h.path)
    q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
    return url.path.rstrip("/") or "/", q


def read_body(h: BaseHTTPRequestHandler) -> bytes:
    """The request body (always read, so a keep-alive connection stays in step)."""
    length = int(h.headers.get("Content-Length") or 0)
    return h.rfile.read(length) if length else b""


def content_type(h: BaseHTTPRequestHandler) -> str:
    """The request's media type without parameters."""
    return (h.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def send_json(
    h: BaseHTTPRequestHandler,
    code: int,
    body: JSON,
    headers: Mapping[str, str] | None = None,
    warnings: list[str] | tuple[str, ...] = (),
) -> None:
    """One JSON response; ``warnings`` become ``Warning: 299 - "..."`` headers, as upstream."""
    data = json.dumps(body, separators=(",", ":")).encode()
    h.send_response(code)
    h.send_header("Content-Type", "application/json")
    h.send_header("Cache-Control", "no-cache, private")
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    for w in warnings:
        h.send_header("Warning", "299 - " + json.dumps(w))
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


def send_text(h: BaseHTTPRequestHandler, text: str) -> None:
    """A 200 text/plain response (health endpoints)."""
    data = text.encode()
    h.send_response(200)
    h.send_header("Content-Type", "text/plain; charset=utf-8")
    h.send_header("Content-Length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)


class HTTPServer(ThreadingHTTPServer):
    """One thread per connection, daemonic, restartable on the same port."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    api: ApiServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("lab apiserver: error serving %s", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    """Hands every request to ``ApiServer._handle``."""

    protocol_version = "HTTP/1.1"
    server_version = "bgpsvc-lab-apiserver"
    server: HTTPServer

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
        self.server.api._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.api._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.api._handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.api._handle(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.api._handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("lab apiserver: " + format, *args)
