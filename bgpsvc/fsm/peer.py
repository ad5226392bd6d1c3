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
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

from ..rib import AdjRibIn, AdjRibOut, Export, RouteAttrs
from ..wire import CeaseSubcode, Family, GracefulRestart, Prefix
from .collision import keep_existing
from .config import SessionConfig
from .events import (
    AnyPeerEvent,
    CloseRequested,
    ConnectionFailed,
    ConnectRequested,
    DownKind,
    EndOfRibReceived,
    EndOfRibSent,
    RouteRefreshRequested,
    SessionDown,
    SessionEvent,
    SessionUp,
    StaleRoutesFlushed,
    StaleRoutesKept,
    State,
    StateChanged,
    UpdateReceived,
)
from .session import Session
from .status import PeerStatus
from .tally import Tally

#: Prefixes per step when streaming a first table: ~25-40 kB of UPDATEs, a few ms of work per step.
STREAM_CHUNK = 5000
_NO_ROUTES: Mapping[Prefix, RouteAttrs] = {}


class PeerTimer(Enum):
    """The Peer's own deadlines, beside its sessions' timers."""

    RESTART = "RestartTimer"  # RFC 4724 §4.2: the peer's stale routes go when it expires
    STREAM = "StreamStep"  # the next chunk of a large first table


@dataclass(slots=True)
class _Conn:
    session: Session
    outgoing: bool
    local_address: str | None
    paused: bool = False


@dataclass(slots=True)
class _Stream:
    """A first table on its way out in chunks."""

    rib: AdjRibOut
    items: list[tuple[Prefix, RouteAttrs]]
    desired: Mapping[Prefix, RouteAttrs]
    families: tuple[Family, ...]
    pos: int = 0


class Peer:
    """Everything about one BGP neighbour except sockets and clocks (RFC 4271, 4724, 2918)."""

    def __init__(self, config: SessionConfig, *, hold_initial: bool = False) -> None:
        self.config = config
        self.session = Session(config)
        self.rib_out: AdjRibOut | None = None
        self.rib_in = AdjRibIn(config.peer.max_prefixes) if config.peer.store_routes else None
        self.deadlines: dict[PeerTimer, float] = {}
        self.graceful_shutdown = False
        self.tally = Tally()
        self._conns: dict[int, _Conn] = {}
        self._primary: int | None = None  # the connection of ``self.session``
        self._colliding: int | None = None  # an incoming connection with its own Session
        self._closing: dict[int, bytes] = {}  # last bytes of connections being closed
        self._connecting = False
        self._events: deque[AnyPeerEvent] = deque()
        self._desired: Mapping[Prefix, RouteAttrs] = _NO_ROUTES
        self._hold_initial = hold_initial
        self._initial_pending = False
        self._stream: _Stream | None = None
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

    @property
    def prefixes_sent(self) -> int:
        """Prefixes the peer currently has from us."""
        return len(self.rib_out.sent) if self.rib_out is not None else 0

    @property
    def streaming(self) -> bool:
        """A first table is still going out in chunks."""
        return self._stream is not None

    # ------------------------------------------------------------------ administrative inputs

    def start(self, now: float) -> None:
        """ManualStart: connect (unless passive) and keep the peering up."""
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
        record = _Conn(self.session, outgoing, local_address)
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

    # ------------------------------------------------------------------ routes

    def set_desired(self, desired: Mapping[Prefix, RouteAttrs], now: float) -> None:
        """The whole desired set (kept by reference, not copied); the peer gets the difference."""
        self._desired = desired
        self._push(now)

    def release_initial(self, now: float) -> None:
        """The desired set is complete: send the held first table and End-of-RIB."""
        self._hold_initial = False
        if self._initial_pending:
            self._initial_pending = False
            self._push(now, initial=True)

    def set_graceful_shutdown(self, on: bool, now: float) -> None:
        """Re-advertise everything with GRACEFUL_SHUTDOWN (RFC 8326 §4) or back."""
        self.graceful_shutdown = on
        if self.rib_out is not None:
            self.rib_out.set_export(replace(self.rib_out.export, graceful_shutdown=on))
            self._push(now)

    def withdraw_all(self, now: float) -> None:
        """Withdraw everything (before a final Cease, so nothing lingers as stale at the peer)."""
        self._stream = None
        self.deadlines.pop(PeerTimer.STREAM, None)
        if self.rib_out is not None and self.session.established:
            self._send(self.rib_out.update({}), now)

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

    def _export(self, params_peer_as: int, four_octet_as: bool, extended_next_hop: bool) -> Export:
        """Next hops (RFC 4271 §5.1.3): configured, else our address on this connection."""
        p = self.config.peer
        local = self._conns[self._primary].local_address if self._primary is not None else None
        local_ip = ipaddress.ip_address(local.split("%")[0]) if local else None
        v4 = ipaddress.IPv4Address(p.next_hop_v4) if p.next_hop_v4 else None
        if v4 is None and isinstance(local_ip, ipaddress.IPv4Address):
            v4 = local_ip
        v6 = ipaddress.IPv6Address(p.next_hop_v6) if p.next_hop_v6 else None
        if v6 is None and isinstance(local_ip, ipaddress.IPv6Address) and not local_ip.is_link_local:
            v6 = local_ip
        return Export(
            self.config.local_as,
            params_peer_as,
            next_hop_v4=v4,
            next_hop_v6=v6,
            link_local_v6=ipaddress.IPv6Address(p.link_local_v6) if p.link_local_v6 else None,
            four_octet_as=four_octet_as,
            graceful_shutdown=self.graceful_shutdown,
            extended_next_hop=extended_next_hop,
        )

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

    def _keep_forwarding_families(self) -> None:
        """Back after a restart: stale routes of families without preserved forwarding go now (§4.2)."""
        rib = self.rib_in
        if rib is None or PeerTimer.RESTART not in self.deadlines:
            return
        gr = self._peer_gr
        kept = {Family(f.afi, f.safi) for f in gr.families if f.forwarding} if gr is not None else set()
        flushed = sum(rib.end_of_rib(family) for family in list(rib.routes) if family not in kept)
        if gr is None:
            self.deadlines.pop(PeerTimer.RESTART, None)
        if flushed:
            why = "peer back without graceful restart" if gr is None else "forwarding state not preserved"
            self._events.append(StaleRoutesFlushed(flushed, why))

    def _down(self, ev: SessionDown, now: float) -> None:
        self._initial_pending = False
        self._stream = None
        self.deadlines.pop(PeerTimer.STREAM, None)
        self._push_pending = False
        self.rib_out = None
        rib_in, gr = self.rib_in, self._peer_gr
        if rib_in is None:
            return
        note = ev.reason.notification
        hard_reset = note is not None and note.code == 6 and note.subcode == CeaseSubcode.HARD_RESET
        our_n = self.config.graceful_restart is not None and self.config.graceful_restart.notification
        # RFC 4724 §4.2 (and RFC 8538 §3 with the N bit on both sides): keep the peer's routes as stale.
        retain = ev.was_established and (
            ev.reason.kind in (DownKind.TCP_FAILED, DownKind.HOLD_TIMER_EXPIRED)
            or (gr is not None and gr.notification and our_n and not hard_reset)
        )
        if not retain or gr is None:
            rib_in.clear()
            return
        kept = [Family(f.afi, f.safi) for f in gr.families]
        for family in list(rib_in.routes):
            if family not in kept:
                rib_in.routes.pop(family)
        count = rib_in.mark_stale(kept)
        self.deadlines[PeerTimer.RESTART] = now + gr.restart_time
        self._events.append(StaleRoutesKept(count, gr.restart_time))

    def _restart_time_over(self) -> None:
        if self.rib_in is not None:
            dropped = self.rib_in.flush_stale()
            self._events.append(StaleRoutesFlushed(dropped, "restart time over"))

    def _received(self, ev: UpdateReceived) -> None:
        if self.rib_in is None:
            return
        if ev.looped:  # the session found our AS in the path (RFC 4271 §9.1.2)
            self.rib_in.withdraw(ev.update.withdrawals() + ev.update.announced())
            return
        self.rib_in.apply(ev.update)
        eor = ev.update.end_of_rib
        if eor is not None:
            removed = self.rib_in.end_of_rib(eor)
            self._events.append(EndOfRibReceived(eor, removed))

    def _refresh(self, ev: RouteRefreshRequested, now: float) -> None:
        params = self.session.params
        if ev.subtype != 0 or self.rib_out is None or params is None:
            return
        self._send(self.rib_out.refresh(ev.family, params.enhanced_route_refresh), now)

    # ------------------------------------------------------------------ advertising

    def _send(self, msgs: list[bytes], now: float) -> None:
        if msgs:
            self.session.send_updates(msgs, now)

    def _push(self, now: float, initial: bool = False) -> None:
        """Bring the peer to the desired set (the first time: stream it, then End-of-RIB)."""
        rib, params = self.rib_out, self.session.params
        if rib is None or params is None or not self.session.established or self._initial_pending:
            return
        if self._stream is not None:
            self._push_pending = True  # picked up when the first table has gone out
            return
        desired = self._desired
        if initial and len(desired) > STREAM_CHUNK:
            afis = {f.afi for f in params.families}
            items = [(p, r) for p, r in desired.items() if p[0] in afis]
            self._stream = _Stream(rib, items, desired, params.families)
            self._schedule_stream(now)
            return
        msgs = rib.update(desired, params.families)
        if initial:
            msgs += rib.end_of_rib(params.families)
            self._events.append(EndOfRibSent(len(rib.sent), params.families))
        self._send(msgs, now)

    def _schedule_stream(self, now: float) -> None:
        primary = self._conns.get(self._primary) if self._primary is not None else None
        if primary is None or not primary.paused:
            self.deadlines[PeerTimer.STREAM] = now

    def _stream_step(self, now: float) -> None:
        """One chunk of the first table, or the closing catch-up diff and End-of-RIB."""
        st = self._stream
        if st is None or st.rib is not self.rib_out or not self.session.established:
            self._stream = None
            return
        if st.pos < len(st.items):
            chunk = dict(st.items[st.pos : st.pos + STREAM_CHUNK])
            st.pos += STREAM_CHUNK
            delta = st.rib.announce_delta(chunk)
            if delta:
                msgs = st.rib.pack(delta)
                st.rib.commit(delta)
                self._send(msgs, now)
            self._schedule_stream(now)
            return
        self._stream = None
        changed = self._push_pending or self._desired is not st.desired
        self._push_pending = False
        msgs = st.rib.update(self._desired, st.families) if changed else []
        self._send(msgs + st.rib.end_of_rib(st.families), now)
        self._events.append(EndOfRibSent(len(st.rib.sent), st.families))
