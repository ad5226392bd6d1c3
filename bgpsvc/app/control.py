"""A small HTTP endpoint on loopback: ``/status`` (JSON), ``/healthz``, ``/readyz`` and extra handlers.

Plain asyncio rather than a web framework: a handful of GET routes do not justify the dependency. A
handler takes no argument, or (a ``QueryHandler``) the request's query parameters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping

log = logging.getLogger("bgpsvc.control")
Response = tuple[int, str, bytes]
Handler = Callable[[], Response]
QueryHandler = Callable[[Mapping[str, str]], Response]
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def json_handler(fn: Callable[[], object]) -> Handler:
    """A handler returning ``fn()`` as JSON."""
    return lambda: (200, "application/json", json.dumps(fn(), indent=2, default=str).encode() + b"\n")


class ControlServer:
    """Serves GET requests from a routing table of handlers."""

    def __init__(
        self, routes: dict[str, Handler], query_routes: dict[str, QueryHandler] | None = None
    ) -> None:
        self.routes = routes
        self.query_routes = query_routes or {}
        self._server: asyncio.base_events.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; returns the bound address."""
        self._server = await asyncio.start_server(self._serve, host, port)
        addr = self._server.sockets[0].getsockname()
        return addr[0], addr[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, (target, _, query) = parts[0], parts[1].partition("?")
            if method != "GET":
                status, ctype, body = 405, "text/plain", b"only GET\n"
            elif target in self.routes:
                status, ctype, body = self.routes[target]()
            elif target in self.query_routes:
                params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
                status, ctype, body = self.query_routes[target](params)
            else:
                status, ctype, body = 404, "text/plain", b"not found\n"
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("control request failed: %s", exc)
        except Exception:
            log.exception("control handler failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
