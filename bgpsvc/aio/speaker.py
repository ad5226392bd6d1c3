"""The BGP speaker: peers, listener, the desired route set, events, graceful stop (library API).

speaker = Speaker(SpeakerConfig(local_as=64512, router_id="192.0.2.1",
                                peers=(PeerConfig("192.0.2.254", 64500),)))
await speaker.start()
speaker.set_routes({Prefix.from_network("198.51.100.0/24"): RouteAttrs()})
async for event in speaker.events():
    ...
await speaker.stop()          # RFC 8326 graceful shutdown, drain, RFC 9003 Cease
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from ..fsm import SessionEvent, State
from ..rib import DEFAULT_ROUTE, RouteAttrs
from ..wire import CeaseSubcode, Prefix
from .config import PeerConfig, SpeakerConfig
from .peer import PeerRunner
from .sockets import set_md5

log = logging.getLogger("bgpsvc.speaker")


@dataclass(frozen=True, slots=True)
class PeerEvent:
    """A session event of one peer."""

    peer: str
    event: SessionEvent


class Speaker:
    """A BGP speaker advertising one desired route set to all its peers."""

    def __init__(self, config: SpeakerConfig, hold_initial: bool = False) -> None:
        """``hold_initial``: keep each session's first advertisement and End-of-RIB until
        ``release_initial()``, for owners whose desired set is not known at start (the node speaker)."""
        self.config = config
        self._holding = hold_initial
        self.runners: list[PeerRunner] = []
        self._desired: dict[Prefix, RouteAttrs] = {}
        self._listeners: list[socket.socket] = []
        self._accept_tasks: list[asyncio.Task[None]] = []
        self._subscribers: list[asyncio.Queue[PeerEvent | None]] = []
        self._push_scheduled = False
        self._skip_drain = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self.started_at = 0.0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open listeners (if any) and start every peer."""
        self.started_at = time.time()
        loop = asyncio.get_running_loop()
        for host, port in self.config.listen:
            self._listeners.append(self._listen(host, port))
        for lsock in self._listeners:
            self._accept_tasks.append(loop.create_task(self._accept_loop(lsock)))
        for peer in self.config.peers:
            runner = PeerRunner(
                self.config,
                peer,
                self._get_desired,
                self._on_event,
                self.started_at,
                hold_initial=lambda: self._holding,
            )
            self.runners.append(runner)
            runner.start()

    @property
    def holding(self) -> bool:
        """Initial advertisements are still held (see ``hold_initial``)."""
        return self._holding

    def release_initial(self) -> None:
        """The desired set is complete: sessions may send their initial table and End-of-RIB."""
        if self._holding:
            self._holding = False
            for r in self.runners:
                r.release_initial()

    def set_peers(self, peers: tuple[PeerConfig, ...]) -> None:
        """Change the peer set live: new peers start, removed ones get Cease/Peer De-configured."""
        if self._stopping:
            return
        wanted = {(p.address, p.port): p for p in peers}
        keep: list[PeerRunner] = []
        for r in self.runners:
            new = wanted.get((r.peer.address, r.peer.port))
            if new is not None and new == r.peer:
                keep.append(r)
                del wanted[(r.peer.address, r.peer.port)]
                continue
            r.withdraw_all()
            r.stop("peer de-configured", subcode=CeaseSubcode.PEER_DECONFIGURED)
            r.close()
        self.runners = keep
        for peer in wanted.values():
            runner = PeerRunner(
                self.config,
                peer,
                self._get_desired,
                self._on_event,
                self.started_at,
                hold_initial=lambda: self._holding,
            )
            self.runners.append(runner)
            runner.start()
        self.config = replace(self.config, peers=tuple(r.peer for r in self.runners))

    def _listen(self, host: str, port: int) -> socket.socket:
        version = ipaddress.ip_address(host).version
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            for peer in self.config.peers:
                if peer.password and ipaddress.ip_address(peer.address).version == version:
                    set_md5(lsock, peer.address, peer.password)
            lsock.bind((host, port))
            lsock.listen(64)
            lsock.setblocking(False)
        except OSError as exc:
            lsock.close()
            raise OSError(exc.errno, f"listen on [{host}]:{port}: {exc.strerror}") from None
        return lsock

    @property
    def listen_addresses(self) -> list[tuple[str, int]]:
        """Where the speaker actually listens (useful with port 0)."""
        return [s.getsockname()[:2] for s in self._listeners]

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(lsock)
            except asyncio.CancelledError:
                raise
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            runner = self._runner_for(addr[0])
            if runner is None or self._stopping:
                # Not a configured peer: closed before a single BGP byte is read.
                log.info("refused connection from unconfigured %s", addr[0])
                sock.close()
                continue
            sock.setblocking(False)
            runner.accept(sock)

    def _runner_for(self, address: str) -> PeerRunner | None:
        ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        for r in self.runners:
            if ipaddress.ip_address(r.peer.address) == ip:
                return r
        return None

    def skip_drain(self) -> None:
        """End the graceful-shutdown wait now (a second SIGTERM)."""
        self._skip_drain.set()

    async def stop(
        self, drain_time: float | None = None, message: str | None = None, restart: bool = False
    ) -> None:
        """Stop. By default gracefully: GRACEFUL_SHUTDOWN re-advertisement (RFC 8326), drain, withdrawal of
        every route, then Cease/Administrative Shutdown with an RFC 9003 message.

        ``restart=True`` instead closes the connections without a NOTIFICATION and without withdrawing:
        peers acting as graceful-restart helpers (RFC 4724 §4.2) keep forwarding to us until we are back.
        """
        if self._stopping:
            self.skip_drain()
            await self._stopped.wait()
            return
        self._stopping = True
        if restart:
            for r in self.runners:
                r.restart_exit()
            await self._finish()
            return
        drain = self.config.drain_time if drain_time is None else drain_time
        established = [r for r in self.runners if r.session.established]
        if drain > 0 and established:
            for r in established:
                r.set_graceful_shutdown(True)
            log.info("graceful shutdown: draining for %.1f s", drain)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._skip_drain.wait(), drain)
        text = self.config.shutdown_message if message is None else message
        for r in self.runners:
            # Withdraw first: a peer that negotiated RFC 8538 would otherwise keep our routes as stale.
            r.withdraw_all()
            r.stop(text)
        await self._finish()

    async def _finish(self) -> None:
        for t in self._accept_tasks:
            t.cancel()
        for lsock in self._listeners:
            lsock.close()
        # Let the NOTIFICATIONs leave before the sockets go.
        await asyncio.sleep(0.05)
        for r in self.runners:
            r.close()
        for q in self._subscribers:
            q.put_nowait(None)
        self._stopped.set()

    # ------------------------------------------------------------------ routes

    def _get_desired(self) -> Mapping[Prefix, RouteAttrs]:
        return self._desired

    @property
    def routes(self) -> Mapping[Prefix, RouteAttrs]:
        """The current desired set (read-only view)."""
        return MappingProxyType(self._desired)

    def set_routes(self, desired: Mapping[Prefix, RouteAttrs]) -> None:
        """Replace the whole desired set; each peer receives only the difference."""
        self._desired = dict(desired)
        self._schedule_push()

    def announce(self, prefix: Prefix | str, attrs: RouteAttrs = DEFAULT_ROUTE) -> None:
        """Add or change one route."""
        p = Prefix.from_network(prefix) if isinstance(prefix, str) else prefix
        self._desired = {**self._desired, p: attrs}
        self._schedule_push()

    def withdraw(self, prefix: Prefix | str) -> None:
        """Remove one route."""
        p = Prefix.from_network(prefix) if isinstance(prefix, str) else prefix
        if p in self._desired:
            self._desired = {k: v for k, v in self._desired.items() if k != p}
            self._schedule_push()

    def _schedule_push(self) -> None:
        if not self._push_scheduled:
            self._push_scheduled = True
            asyncio.get_running_loop().call_soon(self._push_all)

    def _push_all(self) -> None:
        self._push_scheduled = False
        for r in self.runners:
            r.push()

    # ------------------------------------------------------------------ events and status

    def _on_event(self, runner: PeerRunner, event: SessionEvent) -> None:
        log.debug("%s: %s", runner.peer.label, event)
        for q in self._subscribers:
            q.put_nowait(PeerEvent(runner.peer.label, event))

    async def events(self) -> AsyncIterator[PeerEvent]:
        """Every peer's session events, until the speaker stops."""
        q: asyncio.Queue[PeerEvent | None] = asyncio.Queue()
        self._subscribers.append(q)
        try:
            while (item := await q.get()) is not None:
                yield item
        finally:
            self._subscribers.remove(q)

    async def wait_established(self, timeout: float, peers: list[str] | None = None) -> None:
        """Wait (bounded) until the named peers (default: all) are Established."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            wanted = [r for r in self.runners if peers is None or r.peer.label in peers]
            if wanted and all(r.session.state is State.ESTABLISHED for r in wanted):
                return
            if loop.time() > deadline:
                states = {r.peer.label: r.session.state.value for r in wanted}
                raise TimeoutError(f"peers not established after {timeout} s: {states}")
            await asyncio.sleep(0.05)

    def status(self) -> dict[str, Any]:
        """Plain data for ``bgpsvc status``."""
        return {
            "local_as": self.config.local_as,
            "router_id": self.config.router_id,
            "routes": len(self._desired),
            "started_at": self.started_at,
            "stopping": self._stopping,
            "peers": [r.status() for r in self.runners],
        }


__all__ = ["PeerConfig", "PeerEvent", "Speaker", "SpeakerConfig"]
