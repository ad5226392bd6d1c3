"""One neighbour, sans-IO: its connections, sessions, RIBs and every protocol decision but the socket.

Theory of operation
-------------------
A ``Peer`` owns the primary ``Session`` (which exists before any connection: Idle, Connect, Active)
and, during a connection collision, a second one for the colliding connection. The driver names each
TCP connection with an integer it picks and feeds the Peer:

    connection_made(conn, now, outgoing=..., local_address=...)   connect_failed(now)
    receive_data(conn, data, now)   connection_lost(conn, now)    pause_writing(conn) / resume_writing
    handle_timer(now)               start / stop / restart_exit   set_desired(routes, now) ...

and carries out what comes back: ``data_to_send(conn)`` bytes, ``next_event()`` (``ConnectRequested``,
``CloseRequested(conn)``: send what is queued, then close; the session's events; graceful-restart
phases), ``get_timer()`` the earliest deadline of every session timer and the Peer's own.

Decisions made here, each tested without a socket:

- Accepting a connection (RFC 4271 §8.2.2, §6.8): Idle refuses; against Established the new
  connection loses; in Connect/Active it becomes the session; in OpenSent/OpenConfirm it collides.
- Collision resolution (``collision.py``) once an OPEN has told us the peer's BGP Identifier.
- Next hops from the configuration or our address on the connection (RFC 4271 §5.1.3).
- The first advertisement: held while the owner's desired set is incomplete (``hold_initial``), then
  streamed in chunks of ``STREAM_CHUNK`` prefixes, one chunk per timer step (a deadline at ``now``),
  so the driver writes and reads, and keepalives go out, between chunks; paused while the transport's
  buffer is full. End-of-RIB closes it (RFC 4724 §2).
- Graceful restart as helper (RFC 4724 §4.2, RFC 8538): the peer's routes kept as stale when its
  session drops, flushed at its restart time (a ``PeerTimer.RESTART`` deadline), at End-of-RIB, or
  when it comes back without graceful restart or without the F bit for a family.
- ROUTE-REFRESH answers (RFC 2918 §4, RFC 7313 §4).
- BFD as a client (RFC 5882, ``bfd_coupling.py``): ``bfd_changed`` takes the session down and holds it.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import replace

from ..rib import AdjRibIn, AdjRibOut, RouteAttrs
from ..wire import CeaseSubcode, GracefulRestart, Prefix
from .advertise import STREAM_CHUNK, Advertising, Conn
from .bfd_coupling import BfdCoupling
from .collision import keep_existing
from .config import SessionConfig
from .events import (
    AnyPeerEvent,
    CloseRequested,
    ConnectionFailed,
    ConnectRequested,
    RouteRefreshRequested,
    SessionDown,
    SessionEvent,
    SessionUp,
    State,
    StateChanged,
    UpdateReceived,
)
from .inputs import PeerTimer
from .restart import RestartHelper
from .session import Session
from .status import PeerStatus
from .tally import Tally

_NO_ROUTES: Mapping[Prefix, RouteAttrs] = {}


class Peer(Advertising, RestartHelper, BfdCoupling):
    """Everything about one BGP neighbour except sockets and clocks (RFC 4271, 4724, 2918, 5882)."""

    def __init__(self, config: SessionConfig, *, hold_initial: bool = False) -> None:
        self.config = config
        self.session = Session(config)
        self.rib_out: AdjRibOut | None = None
        self.rib_in = AdjRibIn(config.peer.max_prefixes) if config.peer.store_routes else None
        self.deadlines: dict[PeerTimer, float] = {}
        self.graceful_shutdown = False
        self.bfd_held = False  # BFD failed: the session waits in Idle for it (RFC 5882)
        self.tally = Tally()
        self._conns: dict[int, Conn] = {}
        self._primary: int | None = None  # the connection of ``self.session``
        self._colliding: int | None = None  # an incoming connection with its own Session
        self._closing: dict[int, bytes] = {}  # last bytes of connections being closed
        self._connecting = False
        self._events: deque[AnyPeerEvent] = deque()
        self._desired: Mapping[Prefix, RouteAttrs] = _NO_ROUTES
        self._hold_initial = hold_initial
        self._initial_pending = False
        self._stream = None
        self._push_pending = False
        self._peer_gr: GracefulRestart | None = None

    # ------------------------------------------------------------------ views

    @property
    def label(self) -> str:
        """Name for logs and status."""
        return self.config.peer.label

    @property
    def state(self) -> State:
        """The primary session's FSM state."""
        return self.session.state

    @property
    def established(self) -> bool:
        """The session is Established."""
        return self.session.established

    # ------------------------------------------------------------------ administrative inputs

    def start(self, now: float) -> None:
        """ManualStart: connect (unless passive) and keep the peering up (once BFD is Up, if it failed)."""
        if self.bfd_held:
            self.session.admin_up = True
        else:
            self.session.start(now)
        self._pump(now)

    def stop(
        self, now: float, message: str = "", subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN
    ) -> None:
        """ManualStop on every connection: Cease with an RFC 9003 message (subcodes 2 and 4), close."""
        if subcode not in (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET):
            message = ""  # only Administrative Shutdown/Reset carry a shutdown communication
        if self._colliding is not None:
            self._conns[self._colliding].session.stop(now, message, subcode)
        self.session.stop(now, message, subcode)
        self._pump(now)
        self.deadlines.pop(PeerTimer.STREAM, None)

    def restart_exit(self, now: float) -> None:
        """Leave for a restart: close without a NOTIFICATION, so graceful-restart helpers keep our routes."""
        for conn in list(self._conns):
            self._close(conn, "restarting")
        self._primary = self._colliding = None
        self.deadlines.clear()

    def set_config(self, config: SessionConfig, now: float | None = None) -> None:
        """New settings that need no new session (``PeerConfig.session_key`` unchanged): next hops and
        limits apply at once, re-advertising what changed."""
        self.config = config
        self.session.config = config
        if self.rib_in is not None:
            self.rib_in.max_prefixes = config.peer.max_prefixes
        rib, params = self.rib_out, self.session.params
        if now is not None and config.peer.bfd is None:
            self._bfd_release(now)
        if now is not None and rib is not None and params is not None:
            rib.set_export(
                self._export(params.peer_as, params.ctx.four_octet_as, bool(params.extended_next_hop))
            )
            self._push(now)

    # ------------------------------------------------------------------ connection inputs

    def connect_failed(self, now: float, detail: str = "") -> None:
        """Our connection attempt failed (TcpConnectionFails in Connect)."""
        self._connecting = False
        self._events.append(ConnectionFailed(detail))
        if self._primary is None and self.session.state is State.CONNECT:
            self.session.connection_failed(now, detail)
            self._pump(now)

    def connection_made(
        self, conn: int, now: float, *, outgoing: bool, local_address: str | None = None
    ) -> None:
        """A TCP connection to or from this peer is up (RFC 4271 §8.2.2 events 16/17)."""
        if outgoing:
            self._connecting = False
        record = Conn(self.session, outgoing, local_address)
        state = self.session.state
        if state in (State.CONNECT, State.ACTIVE) and self._primary is None:
            self._conns[conn] = record
            self._primary = conn
            self.session.connection_made(now)
        elif outgoing or state is State.IDLE or state is State.ESTABLISHED or self._colliding is not None:
            # Idle refuses (§8.2.2); against Established the new connection loses (§6.8); and an
            # attempt of ours that completes after the peer's connection won the race is not needed.
            self._conns[conn] = record
            self._close(conn, f"refused in {state.value}")
        else:
            # Our session is in OpenSent/OpenConfirm: a collision, resolved once an OPEN tells the ID.
            record.session = Session(replace(self.config, peer=replace(self.config.peer, passive=True)))
            self._conns[conn] = record
            self._colliding = conn
            record.session.start(now)
            record.session.connection_made(now)
        self._pump(now)

    def receive_data(self, conn: int, data: bytes, now: float) -> None:
        """Bytes from connection ``conn`` (``b""``: the peer closed it)."""
        record = self._conns.get(conn)
        if record is not None:
            record.session.receive_data(data, now)
            self._pump(now)

    def connection_lost(self, conn: int, now: float, detail: str = "") -> None:
        """Connection ``conn`` broke (TcpConnectionFails)."""
        record = self._conns.get(conn)
        if record is not None:
            record.session.connection_failed(now, detail or "connection lost")
            self._pump(now)
        self._forget(conn)

    def data_to_send(self, conn: int) -> bytes:
        """Bytes queued for connection ``conn``."""
        record = self._conns.get(conn)
        if record is not None:
            return record.session.data_to_send()
        return self._closing.pop(conn, b"")

    def pause_writing(self, conn: int) -> None:
        """The transport's buffer is full: build no more of a streamed table until it drains."""
        record = self._conns.get(conn)
        if record is not None:
            record.paused = True
            if conn == self._primary:
                self.deadlines.pop(PeerTimer.STREAM, None)

    def resume_writing(self, conn: int, now: float) -> None:
        """The transport's buffer drained."""
        record = self._conns.get(conn)
        if record is not None:
            record.paused = False
            if conn == self._primary and self._stream is not None:
                self.deadlines[PeerTimer.STREAM] = now

    # ------------------------------------------------------------------ timers and events

    def get_timer(self) -> float | None:
        """The earliest deadline of the sessions and the Peer, or None."""
        times = [t for t in (self.session.get_timer(), self._colliding_session_timer()) if t is not None]
        times += self.deadlines.values()
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        """Fire every deadline at or before ``now``."""
        self.session.handle_timer(now)
        if self._colliding is not None:
            self._conns[self._colliding].session.handle_timer(now)
        self._pump(now)
        deadline = self.deadlines.get(PeerTimer.RESTART)
        if deadline is not None and deadline <= now:
            del self.deadlines[PeerTimer.RESTART]
            self._restart_time_over()
        deadline = self.deadlines.get(PeerTimer.STREAM)
        if deadline is not None and deadline <= now:
            del self.deadlines[PeerTimer.STREAM]
            self._stream_step(now)
            self._pump(now)

    def next_event(self) -> AnyPeerEvent | None:
        """The next event for the driver, or None."""
        return self._events.popleft() if self._events else None

    # ------------------------------------------------------------------ status

    def status(self, now: float, classify: Callable[[Prefix], str] | None = None) -> PeerStatus:
        """The typed status (``classify`` splits ``prefixes_sent`` by route class)."""
        s, p = self.session, self.config.peer
        by_class: dict[str, int] = {}
        if classify is not None and self.rib_out is not None:
            for prefix in self.rib_out.sent:
                cls = classify(prefix)
                by_class[cls] = by_class.get(cls, 0) + 1
        return PeerStatus(
            name=p.label,
            address=p.address,
            peer_as=p.peer_as,
            local_as=self.config.local_as,
            state=s.state.value,
            uptime=(now - s.established_at) if s.established_at is not None else None,
            last_down=str(s.last_down) if s.last_down else None,
            prefixes_sent=self.prefixes_sent,
            prefixes_received={str(f): len(v) for f, v in s.received.items()},
            messages_sent=s.messages_sent,
            messages_received=s.messages_received,
            updates_sent=s.updates_sent,
            updates_received=s.updates_received,
            hold_time=s.params.hold_time if s.params else None,
            families=tuple(str(f) for f in s.params.families) if s.params else (),
            graceful_shutdown=self.graceful_shutdown,
            unroutable=self.rib_out.unroutable if self.rib_out else 0,
            flaps=self.tally.flaps,
            notifications_sent=dict(self.tally.notifications_sent),
            notifications_received=dict(self.tally.notifications_received),
            update_errors=dict(self.tally.update_errors),
            stale_routes=self.rib_in.stale_count() if self.rib_in is not None else 0,
            prefixes_by_class=by_class,
        )

    # ------------------------------------------------------------------ the event pump

    def _colliding_session_timer(self) -> float | None:
        return self._conns[self._colliding].session.get_timer() if self._colliding is not None else None

    def _pump(self, now: float) -> None:
        """Route the sessions' events: the colliding one's first (it may replace the primary)."""
        if self._colliding is not None:
            conn = self._colliding
            session = self._conns[conn].session
            while self._colliding == conn and (ev := session.next_event()) is not None:
                if isinstance(ev, CloseRequested):
                    self._close(conn, "")
                    if self._colliding == conn:
                        self._colliding = None
                elif isinstance(ev, StateChanged) and ev.new is State.OPENCONFIRM:
                    self._resolve_collision(now)
                self.tally.count(ev, flaps=False)
        while (ev := self.session.next_event()) is not None:
            self._primary_event(ev, now)

    def _primary_event(self, ev: SessionEvent, now: float) -> None:
        self.tally.count(ev)
        if isinstance(ev, ConnectRequested):
            if not self._connecting:
                self._connecting = True
                self._events.append(ev)
            return
        if isinstance(ev, CloseRequested):
            if self._primary is not None:
                conn, self._primary = self._primary, None
                self._close(conn, "")
            if self._colliding is not None:
                self._promote_colliding()
            return
        self._events.append(ev)
        if isinstance(ev, SessionUp):
            self._established(ev, now)
        elif isinstance(ev, SessionDown):
            self._down(ev, now)
        elif isinstance(ev, UpdateReceived):
            self._received(ev)
        elif isinstance(ev, RouteRefreshRequested):
            self._refresh(ev, now)
        elif isinstance(ev, StateChanged) and ev.new is State.OPENCONFIRM:
            self._resolve_collision(now)

    def _close(self, conn: int, reason: str) -> None:
        record = self._conns.pop(conn, None)
        if record is None:
            return
        self._closing[conn] = record.session.data_to_send()
        self._events.append(CloseRequested(conn, reason))

    def _forget(self, conn: int) -> None:
        self._conns.pop(conn, None)
        self._closing.pop(conn, None)
        if conn == self._primary:
            self._primary = None
        if conn == self._colliding:
            self._colliding = None

    def _resolve_collision(self, now: float) -> None:
        """RFC 4271 §6.8, once either connection has the peer's OPEN (``collision.keep_existing``)."""
        inc, pri = self._colliding, self._primary
        if inc is None or pri is None:
            return
        incoming, primary = self._conns[inc], self._conns[pri]
        # Whichever connection has the peer's OPEN knows its BGP Identifier (it may already be past
        # OpenConfirm if the OPEN and the KEEPALIVE arrived together).
        known = [s.params for s in (primary.session, incoming.session) if s.params is not None]
        if not known:
            return
        params = known[0]
        remote_id = ipaddress.IPv4Address(params.peer_id)
        # The loser's KEEPALIVE (its answer to the OPEN) is still unsent: drop it, so the peer sees the
        # Cease right after our OPEN and never reaches Established on a connection that is going away.
        if keep_existing(
            self.config.router_id, remote_id, primary.outgoing, self.config.local_as, params.peer_as
        ):
            incoming.session.data_to_send()
            incoming.session.collision_dump(now)
            self._pump_discard(incoming.session)
            self._close(inc, "collision: the existing connection wins (RFC 4271 §6.8)")
            self._colliding = None
            return
        primary.session.data_to_send()
        primary.session.collision_dump(now)
        self._pump_discard(primary.session)
        self._close(pri, "collision: the peer's connection wins (RFC 4271 §6.8)")
        self._primary = None
        self._promote_colliding()

    def _promote_colliding(self) -> None:
        """The colliding connection carries the peering now (the other lost, or closed first)."""
        assert self._colliding is not None
        old = self.session
        self._pump_discard(old)
        new = self._conns[self._colliding].session
        new.config = self.config  # no longer passive-only: it is the peering now
        new.admin_up = old.admin_up or new.admin_up
        self.session = new
        self._primary, self._colliding = self._colliding, None
        if old.state is not new.state:
            self._events.append(StateChanged(old.state, new.state))

    def _pump_discard(self, session: Session) -> None:
        # A dumped connection's events (its CloseRequested, its SessionDown) are not the peering's.
        while (ev := session.next_event()) is not None:
            self.tally.count(ev, flaps=False)

    # ------------------------------------------------------------------ session up and down

    def _established(self, ev: SessionUp, now: float) -> None:
        params = ev.params
        export = self._export(params.peer_as, params.ctx.four_octet_as, bool(params.extended_next_hop))
        self.rib_out = AdjRibOut(export, params.ctx)
        self._peer_gr = params.peer_graceful_restart
        self._keep_forwarding_families()
        gr = self.config.graceful_restart
        if gr is not None and gr.restarting:
            # The restart window is over once a session is up: later sessions are not "restarting".
            self.set_config(replace(self.config, graceful_restart=replace(gr, restarting=False)))  # no push
        if self._hold_initial:
            # The desired set is not known yet (e.g. the Kubernetes informers have not synced): sending
            # End-of-RIB now would make a graceful-restart helper flush our stale routes (RFC 4724 §4.2).
            self._initial_pending = True
        else:
            self._push(now, initial=True)

    def _down(self, ev: SessionDown, now: float) -> None:
        self._initial_pending = False
        self._stream = None
        self.deadlines.pop(PeerTimer.STREAM, None)
        self._push_pending = False
        self.rib_out = None
        self._retain_or_clear(ev, now)


__all__ = ["STREAM_CHUNK", "Peer", "PeerTimer"]
