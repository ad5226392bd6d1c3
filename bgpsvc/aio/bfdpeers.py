"""The speaker's BFD: one ``BfdThread`` and a session per BFD-enabled peer (RFC 5881, multihop RFC 5883).

BFD runs in its own thread with its own event loop (``bgpsvc.aio.bfd``), so a busy main loop (a big
table being encoded, a reconcile) does not delay its packets; bench/bfd.py measures why. Its state
changes come back to the speaker's loop, where ``Peer.bfd_changed`` (sans-IO, RFC 5882) decides what
they mean for BGP. No protocol decision is made here.

Addressing: a single hop session starts at once, from ``local_address`` if configured, else from
whatever address the kernel picks (RFC 5881 §3: single hop sessions are found by the peer's address).
A multihop session (the peer has ``multihop:``) is keyed by its source address as well (RFC 5883 §4),
so without ``local_address`` it starts once the BGP connection has told us our address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from ..bfd import BfdConfig, BfdEvent, BfdStatus, SessionKey, State
from ..fsm import BfdPeerStatus, BfdSettings
from .bfd import MULTIHOP_PORT, SINGLE_HOP_PORT, BfdThread
from .peer import PeerDriver

log = logging.getLogger("bgpsvc.bfd")
EventSink = Callable[[PeerDriver, BfdEvent], None]
#: Where BFD listens unless told otherwise: every address of both families.
LISTEN = ("0.0.0.0", "::")
#: Longest we keep sending AdminDown on the way out (a peer's detection time is usually below 1 s).
LINGER = 1.0


def bfd_config(key: SessionKey, settings: BfdSettings, multihop_ttl: int | None) -> BfdConfig:
    """The session for a peer's settings; multihop accepts what ``multihop_ttl`` hops leave of TTL 255."""
    min_ttl = None if multihop_ttl is None else 256 - multihop_ttl  # multihop: 2 -> 254 (RFC 5883 §5)
    return BfdConfig(
        key,
        desired_min_tx_us=settings.min_tx_ms * 1000,
        required_min_rx_us=settings.min_rx_ms * 1000,
        detect_mult=settings.multiplier,
        min_ttl=min_ttl,
    )


class PeerBfd:
    """The BFD sessions of a speaker's peers, in one ``BfdThread`` started when the first one is needed."""

    def __init__(
        self,
        sink: EventSink,
        *,
        listen: tuple[str, ...] = LISTEN,
        ports: tuple[int, int] = (SINGLE_HOP_PORT, MULTIHOP_PORT),
    ) -> None:
        self._sink = sink
        self._listen = listen
        self._ports = ports
        self.thread: BfdThread | None = None
        self._keys: dict[PeerDriver, SessionKey] = {}
        self._settings: dict[PeerDriver, BfdSettings] = {}
        self._learned: dict[PeerDriver, str] = {}  # a multihop peer's source, from its connection

    # ------------------------------------------------------------------ sessions

    def sync(self, drivers: Iterable[PeerDriver]) -> None:
        """Sessions for exactly the BFD-enabled ``drivers``: new ones added, gone or re-addressed ones
        removed (AdminDown, not a failure for the peer: RFC 5882 §3.2), changed timers polled in."""
        wanted = {d: self._key(d) for d in drivers if d.config.bfd is not None}
        for d, have in list(self._keys.items()):
            if wanted.get(d) != have:
                self._remove(d)
        for d, key in wanted.items():
            settings = d.config.bfd
            assert settings is not None
            if key is None:
                continue  # multihop, waiting for the connection's local address
            if d not in self._keys:
                self._add(d, key, settings)
            elif self._settings[d] != settings:
                self._retime(d, key, settings)
        for d in list(self._learned):
            if d not in wanted:
                del self._learned[d]

    def learn(self, d: PeerDriver) -> None:
        """``d``'s BGP connection is up: its local address is a multihop session's source (next ``sync``)."""
        if d.config.bfd is not None and d.config.multihop is not None and d.peer.local_address is not None:
            self._learned.setdefault(d, d.peer.local_address)

    def _key(self, d: PeerDriver) -> SessionKey | None:
        p = d.config
        multihop = p.multihop is not None
        local = p.local_address or (self._learned.get(d) if multihop else None)
        if multihop and local is None:
            return None
        return SessionKey(p.address, local, multihop)

    def _start(self) -> BfdThread:
        if self.thread is None:
            thread = BfdThread(
                on_event=self._deliver,
                event_loop=asyncio.get_running_loop(),
                listen=self._listen,
                single_hop_port=self._ports[0],
                multihop_port=self._ports[1],
            )
            try:
                thread.start()
            except OSError as exc:
                ports = "/".join(str(p) for p in self._ports)
                raise OSError(
                    exc.errno, f"bfd: cannot listen on UDP {ports}: {exc.strerror or exc}"
                ) from None
            self.thread = thread
        return self.thread

    def _add(self, d: PeerDriver, key: SessionKey, settings: BfdSettings) -> None:
        self._start().add_session(bfd_config(key, settings, d.config.multihop))
        self._keys[d], self._settings[d] = key, settings
        log.debug("%s: BFD session %s added", d.peer.label, key)

    def _remove(self, d: PeerDriver) -> None:
        key = self._keys.pop(d)
        del self._settings[d]
        if self.thread is not None:
            self.thread.remove_session(key)

    def _retime(self, d: PeerDriver, key: SessionKey, settings: BfdSettings) -> None:
        assert self.thread is not None
        cfg = bfd_config(key, settings, d.config.multihop)
        self.thread.set_timers(
            key,
            desired_min_tx_us=cfg.desired_min_tx_us,
            required_min_rx_us=cfg.required_min_rx_us,
            detect_mult=cfg.detect_mult,
        )
        self._settings[d] = settings

    async def shut(self) -> None:
        """AdminDown for every session, sent for the peer's detection time (RFC 5880 §6.8.16; at most
        ``LINGER``), so that no peer takes our going away for a failure (RFC 5882 §3.2); then ``close``."""
        if self.thread is not None and self._keys:
            wait = 0.0
            for st in self.thread.statuses():
                if st.state is State.UP:
                    wait = max(wait, st.detect_mult * st.tx_interval_us / 1e6)
                self.thread.admin_down(st.key)
            await asyncio.sleep(min(wait, LINGER))
        self.close()

    def close(self) -> None:
        """AdminDown for every session (one packet each), then stop the thread."""
        for d in list(self._keys):
            self._remove(d)
        if self.thread is not None:
            self.thread.stop()
            self.thread = None

    # ------------------------------------------------------------------ events and status

    def _deliver(self, event: BfdEvent) -> None:
        """On the speaker's loop: hand a session's state change to its peer's owner."""
        for d, key in self._keys.items():
            if key == event.key:
                self._sink(d, event)
                return
        log.debug("%s (a session no longer configured)", event)

    def statuses(self, drivers: Iterable[PeerDriver]) -> dict[PeerDriver, BfdPeerStatus]:
        """The BFD part of each BFD-enabled peer's status (one call into the BFD thread)."""
        live: dict[SessionKey, BfdStatus] = {}
        if self.thread is not None and self._keys:
            live = {s.key: s for s in self.thread.statuses()}
        out: dict[PeerDriver, BfdPeerStatus] = {}
        for d in drivers:
            key = self._keys.get(d)
            if d.config.bfd is None:
                continue
            st = live.get(key) if key is not None else None
            out[d] = _status(d, st, d.config.bfd)
        return out


def _status(d: PeerDriver, st: BfdStatus | None, settings: BfdSettings) -> BfdPeerStatus:
    if st is None:
        return BfdPeerStatus(
            state=str(State.DOWN),
            remote_state=str(State.DOWN),
            diagnostic="",
            tx_interval_ms=0.0,
            rx_interval_ms=0.0,
            detection_time_ms=0.0,
            multiplier=settings.multiplier,
            flaps=0,
            multihop=d.config.multihop is not None,
            local_address=d.config.local_address,
            holding=d.peer.bfd_held,
            note="waiting for the BGP connection's local address (multihop)",
        )
    diag = st.last_down_diag if st.state is State.UP else st.local_diag
    return BfdPeerStatus(
        state=str(st.state),
        remote_state=str(st.remote_state),
        diagnostic=str(diag),
        tx_interval_ms=st.tx_interval_us / 1000,
        rx_interval_ms=st.rx_interval_us / 1000,
        detection_time_ms=st.detection_time_us / 1000,
        multiplier=st.detect_mult,
        flaps=st.flaps,
        multihop=st.key.multihop,
        local_address=st.key.local,
        holding=d.peer.bfd_held,
    )


__all__ = ["LISTEN", "PeerBfd", "bfd_config"]
