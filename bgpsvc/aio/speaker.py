"""The BGP speaker: peers, listeners, the desired route set, events, graceful stop (library API).

speaker = Speaker(SpeakerConfig(local_as=64512, router_id="192.0.2.1",
                                peers=(PeerConfig("192.0.2.254", 64500),)))
await speaker.start()
speaker.set_routes({Prefix.from_network("198.51.100.0/24"): RouteAttrs()})
await speaker.wait_established(timeout=30)
async for event in speaker.events():
    ...
await speaker.stop()          # RFC 8326 graceful shutdown, drain, RFC 9003 Cease
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from types import MappingProxyType

from ..bfd import BfdEvent
from ..bfd import State as BfdState
from ..fsm import AnyPeerEvent, Peer, PeerConfig, PeerStatus, SessionConfig, SessionUp, State
from ..rib import DEFAULT_ROUTE, RouteAttrs
from ..wire import CeaseSubcode, Prefix
from .bfd import MULTIHOP_PORT, SINGLE_HOP_PORT
from .bfdpeers import LISTEN, PeerBfd
from .config import SpeakerConfig
from .eventlog import EventLog
from .listener import Listener
from .peer import PeerDriver

log = logging.getLogger("bgpsvc.speaker")


@dataclass(frozen=True, slots=True)
class PeerEvent:
    """A session event of one peer, or a state change of its BFD session."""

    peer: str
    event: AnyPeerEvent | BfdEvent


@dataclass(frozen=True, slots=True)
class SpeakerStatus:
    """The whole speaker: one typed value for ``/status``, ``bgpsvc status`` and ``/metrics``."""

    local_as: int
    router_id: str
    routes: int
    started_at: float
    stopping: bool
    peers: tuple[PeerStatus, ...]


def session_config(speaker: SpeakerConfig, peer: PeerConfig, restarting: bool) -> SessionConfig:
    """A peer's session settings: its own, plus the speaker's AS, router ID and graceful restart."""
    gr = replace(speaker.graceful_restart, restarting=restarting) if peer.graceful_restart else None
    return SessionConfig(
        peer,
        peer.local_as or speaker.local_as,
        ipaddress.IPv4Address(speaker.router_id),
        gr,
        speaker.hostname,
    )


class Speaker:
    """A BGP speaker advertising one desired route set to all its peers."""

    def __init__(
        self,
        config: SpeakerConfig,
        hold_initial: bool = False,
        *,
        bfd_listen: tuple[str, ...] = LISTEN,
        bfd_ports: tuple[int, int] = (SINGLE_HOP_PORT, MULTIHOP_PORT),
    ) -> None:
        """``hold_initial``: keep each session's first advertisement and End-of-RIB until
        ``release_initial()``, for owners whose desired set is not known at start (the node speaker).
        ``bfd_listen``, ``bfd_ports``: where BFD listens (single hop, multihop), once a peer has ``bfd``;
        BFD sessions start with the initial advertisement (``release_initial``)."""
        self.config = config
        self._holding = hold_initial
        self.drivers: list[PeerDriver] = []
        self._bfd = PeerBfd(self._on_bfd, listen=bfd_listen, ports=bfd_ports)
        self._desired: dict[Prefix, RouteAttrs] = {}
        #: Prefixes changed since the peers last got the desired set (None: unknown, compare all).
        self._changed: set[Prefix] | None = None
        self._listener = Listener(self._driver_for, lambda: self._stopping)
        self._subscribers: list[asyncio.Queue[PeerEvent | None]] = []
        self._log = EventLog()
        self._retiring: set[asyncio.Task[None]] = set()
        self._push_scheduled = False
        self._skip_drain = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self.started_at = 0.0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open listeners (if configured) and start every peer."""
        self.started_at = time.time()
        self._listener.open(self.config.listen, self.config.peers)
        for peer in self.config.peers:
            self._add(peer, restarting=self.config.restarting_on_start)

    def _add(self, peer: PeerConfig, restarting: bool = False) -> PeerDriver:
        sans_io = Peer(session_config(self.config, peer, restarting), hold_initial=self._holding)
        driver = PeerDriver(sans_io, self._on_event)
        self.drivers.append(driver)
        sans_io.set_desired(self._desired, driver.now())
        driver.start()
        self._sync_bfd()
        return driver

    def _sync_bfd(self) -> None:
        """BFD sessions for the BFD-enabled peers, once the initial advertisement is released: an owner
        that holds it (the node speaker) is still building a large heap, whose full collections hold the
        GIL for hundreds of ms (bench/bfd.py --soak) and would make BFD at 100 ms x 3 flap."""
        if not self._holding:
            self._bfd.sync(self.drivers)

    def peer(self, label: str) -> Peer:
        """The sans-IO ``Peer`` named ``label`` (its name or address)."""
        for d in self.drivers:
            if label in (d.peer.label, d.config.address):
                return d.peer
        raise KeyError(label)

    @property
    def holding(self) -> bool:
        """Initial advertisements are still held (see ``hold_initial``)."""
        return self._holding

    def release_initial(self) -> None:
        """The desired set is complete: sessions may send their initial table and End-of-RIB."""
        if self._holding:
            self._holding = False
            self._push_scheduled = False  # the push below is the scheduled one, done now
            for d in self.drivers:
                # The first table must be the whole current set: a ``set_routes`` just before this call
                # has not reached the peers yet, and End-of-RIB after a partial table makes a graceful-
                # restart helper flush the rest (RFC 4724 §4.2).
                d.peer.set_desired(self._desired, d.now())
                d.peer.release_initial(d.now())
                d.flush()
            self._changed = set()
            self._sync_bfd()

    def set_peers(self, peers: tuple[PeerConfig, ...]) -> None:
        """Change the peer set live (see ``reconfigure``)."""
        self.reconfigure(replace(self.config, peers=peers))

    def reconfigure(self, config: SpeakerConfig) -> None:
        """Apply a new configuration live. Unchanged peers are not touched; changes that need no new
        session (next hops, limits, names) apply at once, re-advertising what changed; a changed session
        setting (AS, address, hold time, families, password ...) retires that one session gracefully
        (GRACEFUL_SHUTDOWN, drain, withdrawal, Cease/Administrative Reset with an RFC 9003 text) and
        starts it anew; removed peers are retired with Cease/Peer De-configured. A change of our own
        AS, router ID or graceful restart settings renews every session the same way."""
        if self._stopping:
            return
        old = self.config
        renew_all = (old.local_as, old.router_id, old.graceful_restart, old.hostname) != (
            config.local_as,
            config.router_id,
            config.graceful_restart,
            config.hostname,
        )
        if config.listen != old.listen:
            self._listener.close()
            self._listener.open(config.listen, config.peers)
        self.config = config
        wanted = {(ipaddress.ip_address(p.address), p.port): p for p in config.peers}
        keep: list[PeerDriver] = []
        for d in self.drivers:
            new = wanted.pop((ipaddress.ip_address(d.config.address), d.config.port), None)
            if new is not None and not renew_all and new.session_key == d.config.session_key:
                if new != d.config:
                    d.peer.set_config(replace(d.peer.config, peer=new), d.now())
                    d.flush()
                keep.append(d)
            elif new is None:
                self._retire(d, "peer de-configured", CeaseSubcode.PEER_DECONFIGURED)
            else:
                self._retire(d, "peer re-configured", CeaseSubcode.ADMINISTRATIVE_RESET, then=new)
        self.drivers = keep
        for peer in wanted.values():
            self._add(peer)
        self._sync_bfd()  # sessions of removed peers go, changed timers are polled in
        self._listener.set_passwords(config.peers)

    def _retire(self, d: PeerDriver, why: str, subcode: int, then: PeerConfig | None = None) -> None:
        """Take one peer out gracefully (in the background), then start ``then`` in its place."""

        async def retire() -> None:
            drain = self.config.drain_time
            if drain > 0 and d.peer.established and d.peer.prefixes_sent:
                d.peer.set_graceful_shutdown(True, d.now())
                d.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._skip_drain.wait(), drain)
            d.peer.withdraw_all(d.now())
            d.peer.stop(d.now(), why, subcode)
            d.flush()
            await asyncio.sleep(0.05)  # let the NOTIFICATION leave
            d.close()
            if then is not None and not self._stopping:
                self._add(then)

        log.info("%s: %s", d.peer.label, why)
        task = asyncio.get_running_loop().create_task(retire())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    def _driver_for(self, address: str) -> PeerDriver | None:
        ip = ipaddress.ip_address(address.split("%", maxsplit=1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        for d in self.drivers:
            if ipaddress.ip_address(d.config.address) == ip:
                return d
        return None

    @property
    def listen_addresses(self) -> list[tuple[str, int]]:
        """Where the speaker actually listens (useful with port 0)."""
        return self._listener.addresses

    def skip_drain(self) -> None:
        """End the graceful-shutdown wait now (a second SIGTERM)."""
        self._skip_drain.set()

    async def stop(
        self, drain_time: float | None = None, message: str | None = None, restart: bool = False
    ) -> None:
        """Stop. By default gracefully: GRACEFUL_SHUTDOWN re-advertisement (RFC 8326), drain, withdrawal of
        every route, then Cease/Administrative Shutdown with an RFC 9003 message. The drain is skipped
        when no peer has a route from us.

        ``restart=True`` instead closes the connections without a NOTIFICATION and without withdrawing:
        peers acting as graceful-restart helpers (RFC 4724 §4.2) keep forwarding to us until we are back.
        """
        if self._stopping:
            self.skip_drain()
            await self._stopped.wait()
            return
        self._stopping = True
        if restart:
            for d in self.drivers:
                d.peer.restart_exit(d.now())
                d.flush()
            await self._finish()
            return
        drain = self.config.drain_time if drain_time is None else drain_time
        advertising = [d for d in self.drivers if d.peer.established and d.peer.prefixes_sent]
        if drain > 0 and advertising:
            for d in advertising:
                d.peer.set_graceful_shutdown(True, d.now())
                d.flush()
            log.info(
                "graceful shutdown: GRACEFUL_SHUTDOWN sent to %d peers, draining for %.1f s",
                len(advertising),
                drain,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._skip_drain.wait(), drain)
        text = self.config.shutdown_message if message is None else message
        for d in self.drivers:
            # Withdraw first: a peer that negotiated RFC 8538 would otherwise keep our routes as stale.
            d.peer.withdraw_all(d.now())
            d.peer.stop(d.now(), text)
            d.flush()
        await self._finish()

    async def _finish(self) -> None:
        self._listener.close()
        if self._retiring:
            self._skip_drain.set()
            await asyncio.wait(set(self._retiring), timeout=5.0)
        # Let the NOTIFICATIONs leave before the sockets go.
        await asyncio.sleep(0.05)
        # BFD goes AdminDown (no failure, RFC 5882 §3.2) only now, after the connections: a router that
        # is our graceful-restart helper already keeps our routes when it hears it. FRR 8.4 takes even
        # AdminDown for a failure and, had it come first, would drop them (tests/integration/test_bfd_bgp).
        await self._bfd.shut()
        for d in self.drivers:
            d.close()
        for q in self._subscribers:
            q.put_nowait(None)
        self._stopped.set()

    # ------------------------------------------------------------------ routes

    @property
    def routes(self) -> Mapping[Prefix, RouteAttrs]:
        """The current desired set (read-only view)."""
        return MappingProxyType(self._desired)

    def set_routes(
        self,
        desired: Mapping[Prefix, RouteAttrs | None] | Mapping[str, RouteAttrs],
        *,
        owned: bool = False,
        changed: AbstractSet[Prefix] | None = None,
    ) -> None:
        """Replace the whole desired set (``Prefix`` or text keys); each peer gets only the difference.

        ``owned=True``: the caller hands over a ``dict[Prefix, RouteAttrs]`` and never changes it again,
        so it is used as it is; with a million routes that saves a copy (~40 MB) and a pass over them.
        ``changed``: the only prefixes in which ``desired`` differs from the previous set (a promise;
        None: any); peers then compare just those (a node speaker's event: microseconds, not a pass
        over thousands of routes).
        """
        if changed is None or self._changed is None:
            self._changed = None
        else:
            self._changed |= changed
        if owned and isinstance(desired, dict):
            self._desired = desired  # the caller vouches for the types
        else:
            self._desired = {
                (Prefix.from_network(p) if isinstance(p, str) else p): (a or DEFAULT_ROUTE)
                for p, a in desired.items()
            }
        self._schedule_push()

    def announce(self, prefix: Prefix | str, attrs: RouteAttrs = DEFAULT_ROUTE) -> None:
        """Add or change one route."""
        p = Prefix.from_network(prefix) if isinstance(prefix, str) else prefix
        self._desired = {**self._desired, p: attrs}
        if self._changed is not None:
            self._changed.add(p)
        self._schedule_push()

    def withdraw(self, prefix: Prefix | str) -> None:
        """Remove one route."""
        p = Prefix.from_network(prefix) if isinstance(prefix, str) else prefix
        if p in self._desired:
            self._desired = {k: v for k, v in self._desired.items() if k != p}
            if self._changed is not None:
                self._changed.add(p)
            self._schedule_push()

    def _schedule_push(self) -> None:
        if not self._push_scheduled:
            self._push_scheduled = True
            asyncio.get_running_loop().call_soon(self._push_all)

    def _push_all(self) -> None:
        self._push_scheduled = False
        changed, self._changed = self._changed, set()
        for d in self.drivers:
            d.peer.set_desired(self._desired, d.now(), changed)
            d.flush()

    # ------------------------------------------------------------------ events and status

    def _on_event(self, driver: PeerDriver, event: AnyPeerEvent) -> None:
        self._log(driver.peer, event)
        if isinstance(event, SessionUp):
            self._bfd.learn(driver)  # a multihop BFD session's source address
            self._sync_bfd()
        for q in self._subscribers:
            q.put_nowait(PeerEvent(driver.peer.label, event))

    def _on_bfd(self, driver: PeerDriver, event: BfdEvent) -> None:
        """A peer's BFD session changed state: the sans-IO Peer decides (RFC 5882)."""
        self._log.bfd(driver.peer, event)
        if event.new is BfdState.UP:
            driver.peer.bfd_changed(True, driver.now())
        elif event.is_failure:
            driver.peer.bfd_changed(False, driver.now(), event.reason.value)
        driver.flush()
        for q in self._subscribers:
            q.put_nowait(PeerEvent(driver.peer.label, event))

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
            wanted = [d.peer for d in self.drivers if peers is None or d.peer.label in peers]
            if wanted and all(p.state is State.ESTABLISHED for p in wanted):
                return
            if loop.time() > deadline:
                states = {p.label: p.state.value for p in wanted}
                raise TimeoutError(f"peers not established after {timeout} s: {states}")
            await asyncio.sleep(0.05)

    def status(self, classify: Callable[[Prefix], str] | None = None) -> SpeakerStatus:
        """The typed status of the speaker and every peer (with its BFD session, if any)."""
        bfd = self._bfd.statuses(self.drivers)
        return SpeakerStatus(
            local_as=self.config.local_as,
            router_id=self.config.router_id,
            routes=len(self._desired),
            started_at=self.started_at,
            stopping=self._stopping,
            peers=tuple(replace(d.peer.status(d.now(), classify), bfd=bfd.get(d)) for d in self.drivers),
        )


__all__ = ["PeerConfig", "PeerEvent", "Speaker", "SpeakerConfig", "SpeakerStatus", "session_config"]
