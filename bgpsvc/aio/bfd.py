"""asyncio UDP driver for BFD (RFC 5881 single hop, RFC 5883 multihop) around a sans-IO ``BfdEndpoint``.

Receive: one socket per family and hop mode (UDP 3784 single hop, 4784 multihop) shared by every
session, read with ``recvmsg`` for the received TTL / hop limit (``IP_RECVTTL``, ``IPV6_RECVHOPLIMIT``)
and the local address (``IP_PKTINFO``, ``IPV6_RECVPKTINFO``); the endpoint demultiplexes and the
session checks the TTL (255 single hop, RFC 5881 §5; a configured minimum multihop, RFC 5883 §5).
Send: one socket per session, bound to a source port in 49152-65535 kept for the session's life
(RFC 5881 §4), TTL / hop limit 255. One ``call_at`` timer, re-armed only when the endpoint's deadline
moved, fired with ``now = max(deadline, loop.time())``. No protocol decision is made here.

``BfdDriver`` runs on whatever loop calls ``start()``. ``BfdThread`` runs a driver on its own event
loop in a dedicated thread so that transmission does not wait behind CPU-heavy work on the main loop
(bench/bfd.py measures it); its methods are thread-safe and events go to a callback, optionally
scheduled onto another loop. A thread does not escape the GIL: a long ``gc.collect()`` still stalls it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import ipaddress
import logging
import random
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from ..bfd import BfdConfig, BfdEndpoint, BfdEvent, BfdSession, BfdStatus, SessionKey

log = logging.getLogger("bgpsvc.bfd")
T = TypeVar("T")

SINGLE_HOP_PORT = 3784  # RFC 5881 §4
MULTIHOP_PORT = 4784  # RFC 5883 §5
SOURCE_PORTS = (49152, 65535)  # RFC 5881 §4
TTL = 255
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
IP_RECVTTL = getattr(socket, "IP_RECVTTL", 12)
_MAX_BATCH = 64  # datagrams read per wake-up, so one busy socket cannot starve the timer
_ANC_SIZE = socket.CMSG_SPACE(struct.calcsize("i")) + socket.CMSG_SPACE(32)


def open_receive_socket(family: int, address: str, port: int) -> socket.socket:
    """A non-blocking UDP socket on ``address:port`` that reports TTL and destination per datagram."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)  # no SO_REUSEADDR: a second BFD daemon on the port is an error
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.bind((address, port))
    except BaseException:
        sock.close()
        raise
    return sock


def parse_ancillary(ancdata: list[tuple[int, int, bytes]]) -> tuple[str | None, int | None]:
    """(local address, TTL or hop limit) from ``recvmsg`` ancillary data."""
    local: str | None = None
    ttl: int | None = None
    for level, kind, data in ancdata:
        if level == socket.IPPROTO_IP and kind == socket.IP_TTL and len(data) >= 4:
            ttl = struct.unpack("=i", data[:4])[0]
        elif level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(data) >= 12:
            local = socket.inet_ntop(socket.AF_INET, data[8:12])  # in_pktinfo.ipi_addr
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_HOPLIMIT and len(data) >= 4:
            ttl = struct.unpack("=i", data[:4])[0]
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO and len(data) >= 16:
            local = socket.inet_ntop(socket.AF_INET6, data[:16])  # in6_pktinfo.ipi6_addr
    return local, ttl


def open_send_socket(key: SessionKey, rng: random.Random) -> socket.socket:
    """A session's socket: TTL 255, bound to its local address (if any) and a free port in 49152-65535."""
    family = socket.AF_INET6 if ipaddress.ip_address(key.peer).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, TTL)
        else:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, TTL)
        local = key.local or ("::" if family == socket.AF_INET6 else "0.0.0.0")
        for _ in range(64):
            try:
                sock.bind((local, rng.randint(*SOURCE_PORTS)))
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # taken: try another port
                    raise
        else:
            raise OSError(f"bfd {key}: no free source port in {SOURCE_PORTS}")
    except BaseException:
        sock.close()
        raise
    return sock


class BfdDriver:
    """Runs a :class:`BfdEndpoint` on the running asyncio loop (see the module docstring).

    ``listen``: addresses to receive on (one per family); ``multihop``: also listen on 4784.
    ``on_event`` is called on the driver's loop for every :class:`BfdEvent`.
    """

    def __init__(
        self,
        endpoint: BfdEndpoint | None = None,
        *,
        on_event: Callable[[BfdEvent], None] | None = None,
        listen: tuple[str, ...] = ("0.0.0.0", "::"),
        multihop: bool = True,
        single_hop_port: int = SINGLE_HOP_PORT,
        multihop_port: int = MULTIHOP_PORT,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint or BfdEndpoint(rng)
        self.on_event = on_event
        self.listen = listen
        self.ports = {False: single_hop_port, True: multihop_port}
        self.multihop = multihop
        self._rng = rng or random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._receivers: list[socket.socket] = []
        self._multihop_of: dict[int, bool] = {}  # receive socket's fd -> it is the multihop port's
        self._senders: dict[SessionKey, socket.socket] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self.send_errors = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Open the receive sockets on the running loop."""
        self._loop = asyncio.get_running_loop()
        try:
            for address in self.listen:
                family = socket.AF_INET6 if ":" in address else socket.AF_INET
                for mh in (False, True) if self.multihop else (False,):
                    sock = open_receive_socket(family, address, self.ports[mh])
                    self._receivers.append(sock)
                    self._multihop_of[sock.fileno()] = mh
                    self._loop.add_reader(sock.fileno(), self._on_readable, sock, mh)
        except BaseException:
            self.close()
            raise
        self._flush()

    def close(self) -> None:
        """Close every socket and cancel the timer; sessions are left as they are (no AdminDown)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._deadline = None
        for sock in self._receivers:
            if self._loop is not None:
                with contextlib.suppress(Exception):
                    self._loop.remove_reader(sock.fileno())
            sock.close()
        self._receivers.clear()
        self._multihop_of.clear()
        for sock in self._senders.values():
            sock.close()
        self._senders.clear()

    def _now(self) -> float:
        assert self._loop is not None, "BfdDriver.start() first"
        return self._loop.time()

    # ------------------------------------------------------------------ sessions

    def add_session(self, config: BfdConfig) -> BfdSession:
        """Create a session and its send socket; it starts sending at once."""
        sock = open_send_socket(config.key, self._rng)
        try:
            session = self.endpoint.add_session(config, self._now())
        except BaseException:
            sock.close()
            raise
        self._senders[config.key] = sock
        self._flush()
        return session

    def remove_session(self, key: SessionKey) -> None:
        """Send AdminDown (not a failure for the peer, RFC 5882 §3.2), then forget the session."""
        self.endpoint.remove_session(key, self._now())
        self._flush()
        self._senders.pop(key).close()

    def admin_down(self, key: SessionKey) -> None:
        """Take one session AdminDown (RFC 5880 §6.8.16)."""
        self.endpoint.admin_down(key, self._now())
        self._flush()

    def enable(self, key: SessionKey) -> None:
        """Let an AdminDown session come up again."""
        self.endpoint.enable(key, self._now())
        self._flush()

    def set_timers(self, key: SessionKey, **timers: int) -> None:
        """``desired_min_tx_us`` / ``required_min_rx_us`` / ``detect_mult`` (RFC 5880 §6.8.3)."""
        self.endpoint.set_timers(key, self._now(), **timers)
        self._flush()

    def status(self, key: SessionKey) -> BfdStatus:
        """One session's status."""
        return self.endpoint.status(key)

    def statuses(self) -> tuple[BfdStatus, ...]:
        """Every session's status."""
        return tuple(s.status() for s in self.endpoint.sessions.values())

    # ------------------------------------------------------------------ I/O

    def _on_readable(self, sock: socket.socket, multihop: bool) -> None:
        self._read(sock, multihop, self._now())
        self._flush()

    def _read(self, sock: socket.socket, multihop: bool, now: float) -> None:
        for _ in range(_MAX_BATCH):
            try:
                data, anc, _flags, addr = sock.recvmsg(512, _ANC_SIZE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. ICMP errors reported on the socket
                log.debug("bfd receive: %s", exc)
                break
            local, ttl = parse_ancillary(anc)
            self.endpoint.receive_datagram(data, now, peer=addr[0], local=local, multihop=multihop, ttl=ttl)

    def _transmit(self, key: SessionKey, data: bytes) -> None:
        sock = self._senders.get(key)
        if sock is None:
            return
        try:
            sock.sendto(data, (key.peer, self.ports[key.multihop]))
        except OSError as exc:  # unreachable, buffer full: BFD tolerates a lost packet
            self.send_errors += 1
            log.debug("bfd %s: send failed: %s", key, exc)

    def _flush(self) -> None:
        for key, data in self.endpoint.datagrams_to_send():
            self._transmit(key, data)
        while (event := self.endpoint.next_event()) is not None:
            log.debug("%s", event)  # owners log it in their words (aio.eventlog)
            if self.on_event is not None:
                self.on_event(event)
        self._arm()

    def _arm(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline == self._deadline or self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._deadline = deadline
        self._timer = None if deadline is None else self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        deadline = self._deadline
        self._timer = self._deadline = None
        assert deadline is not None
        # Read what has arrived before the timers judge silence, both at one ``now``: after this thread
        # was held up (the GIL, a busy CPU), a detection timer can be due while the peer's packets wait
        # in the socket, and RFC 5880 §6.8.4 is about packets not received, not about packets not yet
        # read (nor about the time this thread takes to read them).
        now = self._now()
        for sock in self._receivers:
            self._read(sock, self._multihop_of[sock.fileno()], now)
        self.endpoint.handle_timer(max(deadline, now))
        self._flush()


class BfdThread:
    """A :class:`BfdDriver` on its own event loop in a dedicated thread; every method is thread-safe.

    ``on_event`` runs in the BFD thread, or on ``event_loop`` (``call_soon_threadsafe``) when given.
    ``thread_init`` runs first in the new thread (e.g. to join a network namespace in tests).
    """

    def __init__(
        self,
        *,
        on_event: Callable[[BfdEvent], None] | None = None,
        event_loop: asyncio.AbstractEventLoop | None = None,
        thread_init: Callable[[], None] | None = None,
        driver_class: type[BfdDriver] = BfdDriver,
        **driver_kw: Any,
    ) -> None:
        self._driver_class = driver_class
        self._on_event = on_event
        self._event_loop = event_loop
        self._thread_init = thread_init
        self._driver_kw = driver_kw
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.driver: BfdDriver | None = None

    def start(self, timeout: float = 10.0) -> None:
        """Start the thread and the driver; raises what the driver's start raised."""
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="bfd", daemon=True)
        self._thread.start()
        ready.result(timeout)

    def _run(self, ready: concurrent.futures.Future[None]) -> None:
        try:
            if self._thread_init is not None:
                self._thread_init()
            loop = asyncio.new_event_loop()
        except BaseException as exc:
            ready.set_exception(exc)
            return
        self._loop = loop
        self.driver = self._driver_class(on_event=self._deliver, **self._driver_kw)

        async def begin() -> None:
            assert self.driver is not None
            self.driver.start()

        try:
            loop.run_until_complete(begin())
        except BaseException as exc:
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            self.driver.close()
            loop.close()

    def _deliver(self, event: BfdEvent) -> None:
        if self._on_event is None:
            return
        if self._event_loop is not None:
            self._event_loop.call_soon_threadsafe(self._on_event, event)
        else:
            self._on_event(event)

    def call(self, fn: Callable[[BfdDriver], T], timeout: float = 10.0) -> T:
        """Run ``fn(driver)`` in the BFD thread and return its result (or raise its exception)."""
        if self._loop is None or self.driver is None:
            raise RuntimeError("BfdThread is not running")
        driver = self.driver
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(fn(driver))
            except BaseException as exc:
                fut.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    def add_session(self, config: BfdConfig) -> None:
        """See :meth:`BfdDriver.add_session`."""
        self.call(lambda d: d.add_session(config))

    def remove_session(self, key: SessionKey) -> None:
        """See :meth:`BfdDriver.remove_session`."""
        self.call(lambda d: d.remove_session(key))

    def admin_down(self, key: SessionKey) -> None:
        """See :meth:`BfdDriver.admin_down`."""
        self.call(lambda d: d.admin_down(key))

    def enable(self, key: SessionKey) -> None:
        """See :meth:`BfdDriver.enable`."""
        self.call(lambda d: d.enable(key))

    def set_timers(self, key: SessionKey, **timers: int) -> None:
        """See :meth:`BfdDriver.set_timers`."""
        self.call(lambda d: d.set_timers(key, **timers))

    def status(self, key: SessionKey) -> BfdStatus:
        """See :meth:`BfdDriver.status`."""
        return self.call(lambda d: d.status(key))

    def statuses(self) -> tuple[BfdStatus, ...]:
        """See :meth:`BfdDriver.statuses`."""
        return self.call(lambda d: d.statuses())

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop, close the sockets and join the thread (bounded)."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._loop = None
