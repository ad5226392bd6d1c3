"""The asyncio driver of one sans-IO ``Peer``: sockets and the loop's clock, no protocol decisions.

The loop is the aioquic one (``asyncio/protocol.py``): bytes in -> ``Peer`` -> write what it returns
-> carry out its events -> re-arm one timer, only when the deadline moved, and fire it with
``now = max(deadline, loop.time())``. Which connection survives a collision, when stale routes go, how
fast a first table goes out: all decided in ``bgpsvc.fsm.peer``, where tests reach them without a socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable
from itertools import count

from ..fsm import AnyPeerEvent, CloseRequested, ConnectRequested, Peer, PeerConfig
from .sockets import gtsm_min_ttl, set_ttl, tcp_socket

log = logging.getLogger("bgpsvc.peer")
#: How long one connection attempt may take before it counts as failed (the kernel's SYN retries
#: would otherwise take about two minutes).
CONNECT_TIMEOUT = 10.0
#: Transport buffer above which the Peer pauses a streamed first table: a few chunks in flight keep
#: the socket busy without holding a whole table in memory (asyncio's default is 64 KiB).
WRITE_HIGH_WATER = 1 << 20
EventSink = Callable[["PeerDriver", AnyPeerEvent], None]
_conn_ids = count(1)


class _Connection(asyncio.Protocol):
    """One TCP connection, named ``conn`` towards the Peer."""

    def __init__(self, driver: PeerDriver, conn: int, outgoing: bool) -> None:
        self.driver = driver
        self.conn = conn
        self.outgoing = outgoing
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        sockname = transport.get_extra_info("sockname")
        local = str(sockname[0]) if sockname else None
        self.driver._connected(self, local)

    def data_received(self, data: bytes) -> None:
        d = self.driver
        d.peer.receive_data(self.conn, data, d.now())
        d.flush()

    def eof_received(self) -> bool | None:
        d = self.driver
        d.peer.receive_data(self.conn, b"", d.now())
        d.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None:
            return  # closed by us
        self.transport = None
        d = self.driver
        d._conns.pop(self.conn, None)
        d.peer.connection_lost(self.conn, d.now(), _why(exc) if exc else "")
        d.flush()

    def pause_writing(self) -> None:
        self.driver.peer.pause_writing(self.conn)

    def resume_writing(self) -> None:
        d = self.driver
        d.peer.resume_writing(self.conn, d.now())
        d.flush()


class PeerDriver:
    """Runs one ``Peer`` on the event loop."""

    def __init__(self, peer: Peer, sink: EventSink) -> None:
        self.peer = peer
        self._sink = sink
        self._loop = asyncio.get_running_loop()
        self._conns: dict[int, _Connection] = {}
        self._connecting: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._closed = False

    @property
    def config(self) -> PeerConfig:
        """This peer's settings."""
        return self.peer.config.peer

    def now(self) -> float:
        """The loop's clock: the ``now`` every input carries."""
        return self._loop.time()

    def start(self) -> None:
        """Start the peering (connects unless passive)."""
        self.peer.start(self.now())
        self.flush()

    def flush(self) -> None:
        """Write what the Peer queued, carry out its events, re-arm the timer if the deadline moved."""
        for conn, proto in list(self._conns.items()):
            data = self.peer.data_to_send(conn)
            if data and proto.transport is not None:
                proto.transport.write(data)
        while (ev := self.peer.next_event()) is not None:
            if isinstance(ev, ConnectRequested):
                self._start_connect()
            elif isinstance(ev, CloseRequested):
                self._close(ev)
            if not isinstance(ev, ConnectRequested):
                self._sink(self, ev)
        self._arm()

    def _arm(self) -> None:
        deadline = None if self._closed else self.peer.get_timer()
        if deadline == self._deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._deadline = deadline
        self._timer = self._loop.call_at(deadline, self._fire) if deadline is not None else None

    def _fire(self) -> None:
        deadline, self._timer, self._deadline = self._deadline, None, None
        if deadline is not None:
            self.peer.handle_timer(max(deadline, self.now()))
            self.flush()

    def _close(self, ev: CloseRequested) -> None:
        if ev.conn is None:
            return
        proto = self._conns.pop(ev.conn, None)
        data = self.peer.data_to_send(ev.conn)
        if proto is None or proto.transport is None:
            return
        transport, proto.transport = proto.transport, None
        if data:
            transport.write(data)
        transport.close()
        if ev.reason:
            log.debug("%s: closed a connection: %s", self.peer.label, ev.reason)

    # ------------------------------------------------------------------ connections

    def _start_connect(self) -> None:
        if self._connecting is None or self._connecting.done():
            self._connecting = self._loop.create_task(self._connect())

    async def _connect(self) -> None:
        p = self.config
        sock: socket.socket | None = None
        try:
            sock = tcp_socket(p.address, p.local_address, p.password)
            self._apply_ttl(sock)
            await asyncio.wait_for(self._loop.sock_connect(sock, (p.address, p.port)), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            if sock is not None:
                sock.close()
            self.peer.connect_failed(self.now(), _why(exc))
            self.flush()
            return
        await self._attach(sock, outgoing=True)

    def _apply_ttl(self, sock: socket.socket) -> None:
        p = self.config
        if p.ttl_security:
            set_ttl(sock, 255, gtsm_min_ttl(1))
        elif p.multihop is not None:
            set_ttl(sock, p.multihop)
        elif self.peer.config.local_as != p.peer_as:
            set_ttl(sock, 1)  # directly connected eBGP, as FRR and BIRD default to
        else:
            set_ttl(sock, 255)

    async def _attach(self, sock: socket.socket, outgoing: bool) -> None:
        proto = _Connection(self, next(_conn_ids), outgoing)
        try:
            await self._loop.connect_accepted_socket(lambda: proto, sock)
        except OSError as exc:
            sock.close()
            if outgoing:
                self.peer.connect_failed(self.now(), _why(exc))
                self.flush()

    def _connected(self, proto: _Connection, local: str | None) -> None:
        if self._closed:
            assert proto.transport is not None
            proto.transport.abort()
            return
        self._conns[proto.conn] = proto
        self.peer.connection_made(proto.conn, self.now(), outgoing=proto.outgoing, local_address=local)
        self.flush()

    def accept(self, sock: socket.socket) -> None:
        """An incoming connection from this peer's address (the listener matched it)."""
        try:
            self._apply_ttl(sock)
        except OSError:
            sock.close()
            return
        self._loop.create_task(self._attach(sock, outgoing=False))

    # ------------------------------------------------------------------ shutting down

    def close(self) -> None:
        """Drop every connection without a NOTIFICATION and stop the timer (after ``stop``)."""
        self._closed = True
        for proto in list(self._conns.values()):
            if proto.transport is not None:
                transport, proto.transport = proto.transport, None
                transport.abort()
        self._conns.clear()
        if self._connecting is not None:
            self._connecting.cancel()
        with contextlib.suppress(Exception):
            if self._timer is not None:
                self._timer.cancel()
        self._timer = self._deadline = None


__all__ = ["EventSink", "PeerDriver"]


def _why(exc: BaseException) -> str:
    """A failed connection in words: ``connection refused``, not ``[Errno 111] Connect call failed (...)``."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__
