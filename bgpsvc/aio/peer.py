"""Drives one peer's ``Session`` over asyncio TCP: the only place sessions meet sockets and the clock.

The driver loop is the sans-IO one: input -> session -> write ``data_to_send()`` -> handle events ->
re-arm ``loop.call_at(get_timer())``. Collisions (RFC 4271 §6.8): an incoming connection while our
own is in OpenSent/OpenConfirm gets its own passive ``Session``; once either side has the peer's OPEN,
the connection initiated by the speaker with the higher BGP Identifier survives and the other is
dumped with Cease/Connection Collision Resolution.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from ..fsm import (
    CloseRequested,
    ConnectRequested,
    DownKind,
    GracefulRestartConfig,
    RouteRefreshRequested,
    Session,
    SessionConfig,
    SessionDown,
    SessionEvent,
    SessionUp,
    State,
    StateChanged,
    UpdateReceived,
)
from ..rib import AdjRibIn, AdjRibOut, Export, RouteAttrs
from ..wire import CeaseSubcode, Family, GracefulRestart, Prefix
from .config import PeerConfig, SpeakerConfig
from .sockets import gtsm_min_ttl, set_ttl, tcp_socket

log = logging.getLogger("bgpsvc.peer")
CONNECT_TIMEOUT = 10.0
#: Prefixes per step when streaming a large first table (RFC 4271 §9.2 leaves pacing to us).
STREAM_CHUNK = 5000
EventSink = Callable[["PeerRunner", SessionEvent], None]


class _Protocol(asyncio.Protocol):
    """Feeds one TCP connection into one ``Session`` of a runner."""

    def __init__(self, runner: PeerRunner, session: Session) -> None:
        self.runner = runner
        self.session = session
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.runner._input(self, lambda now: self.session.receive_data(data, now))

    def eof_received(self) -> bool | None:
        self.runner._input(self, lambda now: self.session.receive_data(b"", now))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.transport = None
            self.runner._input(self, self.session.connection_failed, lost=True)


class PeerRunner:
    """One configured peer: its session(s), transport, Adj-RIB-Out and optional Adj-RIB-In."""

    def __init__(
        self,
        speaker: SpeakerConfig,
        peer: PeerConfig,
        desired: Callable[[], Mapping[Prefix, RouteAttrs]],
        sink: EventSink,
        started_at: float,
        *,
        hold_initial: Callable[[], bool] = lambda: False,
    ) -> None:
        self.speaker = speaker
        self.peer = peer
        self._desired = desired
        self._sink = sink
        self._loop = asyncio.get_running_loop()
        self.session = Session(self._session_config(restarting=speaker.restarting_on_start))
        self.started_at = started_at
        self.rib_out: AdjRibOut | None = None
        self.rib_in = AdjRibIn(peer.max_prefixes) if peer.store_routes else None
        self.graceful_shutdown = False
        self.established_since: float | None = None
        self.prefixes_sent = 0
        self._conn: _Protocol | None = None
        self._incoming: _Protocol | None = None  # a colliding incoming connection with its own Session
        self._connecting: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._stale_timer: asyncio.TimerHandle | None = None
        self._outgoing = False
        self._peer_gr: GracefulRestart | None = None
        self._our_n_bit = False
        self._streaming: asyncio.Task[None] | None = None
        self._push_pending = False
        self._hold_initial = hold_initial
        self._initial_pending = False

    # ------------------------------------------------------------------ configuration

    def _session_config(self, restarting: bool) -> SessionConfig:
        s, p = self.speaker, self.peer
        gr: GracefulRestartConfig | None = None
        if p.graceful_restart:
            gr = replace(s.graceful_restart, restarting=restarting)
        return SessionConfig(
            local_as=p.local_as or s.local_as,
            peer_as=p.peer_as,
            router_id=ipaddress.IPv4Address(s.router_id),
            hold_time=p.hold_time,
            connect_retry_time=p.connect_retry_time,
            passive=p.passive,
            families=p.families,
            extended_message=p.extended_message,
            graceful_restart=gr,
            hostname=s.hostname,
            max_prefixes=p.max_prefixes,
            max_prefix_action=p.max_prefix_action,
        )

    @property
    def local_as(self) -> int:
        """The AS we present to this peer."""
        return self.peer.local_as or self.speaker.local_as

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the session (connects unless passive)."""
        self._drive(self.session.start)

    def withdraw_all(self) -> None:
        """Withdraw everything this peer has from us (before a final Cease, so nothing lingers as stale)."""
        rib = self.rib_out
        if rib is not None and self.session.established:
            msgs = rib.update({})
            self.prefixes_sent = 0
            self._send(msgs)

    def restart_exit(self) -> None:
        """Leave for a restart: close without a NOTIFICATION, so graceful-restart helpers keep our routes."""
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.write(self.session.data_to_send())
        self.close()

    def stop(self, message: str, subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN) -> None:
        """Cease with an RFC 9003 message (subcodes 2 and 4) and close."""
        if subcode not in (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET):
            message = ""  # only Administrative Shutdown/Reset carry a shutdown communication
        if self._incoming is not None:
            inc = self._incoming
            self._incoming = None
            inc.session.stop(self._now(), message, subcode)
            self._flush(inc)
        self._drive(lambda now: self.session.stop(now, message, subcode))
        if self._connecting is not None:
            self._connecting.cancel()
        for handle in (self._timer, self._stale_timer):
            if handle is not None:
                handle.cancel()

    def _now(self) -> float:
        return self._loop.time()

    def _drive(self, action: Callable[[float], None]) -> None:
        action(self._now())
        self._flush(self._conn)

    def _input(self, proto: _Protocol, action: Callable[[float], None], lost: bool = False) -> None:
        """Input from a connection; ignored if that connection is no longer ours."""
        if proto is self._conn:
            action(self._now())
            self._flush(proto)
        elif proto is self._incoming:
            action(self._now())
            self._flush(proto)
            self._resolve_collision()

    # ------------------------------------------------------------------ the driver loop

    def _flush(self, proto: _Protocol | None) -> None:
        session = proto.session if proto is not None else self.session
        data = session.data_to_send()
        if data and proto is not None and proto.transport is not None:
            proto.transport.write(data)
        while (ev := session.next_event()) is not None:
            self._event(proto, session, ev)
        if session is self.session:
            self._arm_timer()

    def _event(self, proto: _Protocol | None, session: Session, ev: SessionEvent) -> None:
        if isinstance(ev, ConnectRequested):
            if session is self.session:
                self._start_connect()
            return
        if isinstance(ev, CloseRequested):
            if proto is not None and proto.transport is not None:
                transport, proto.transport = proto.transport, None
                transport.close()
            if proto is self._conn:
                self._conn = None
            if proto is self._incoming:
                self._incoming = None
            return
        if session is not self.session:
            if isinstance(ev, StateChanged) and ev.new is State.OPENCONFIRM:
                self._resolve_collision()
            return
        if isinstance(ev, SessionUp):
            self._established(ev)
        elif isinstance(ev, SessionDown):
            self._down(ev)
        elif isinstance(ev, UpdateReceived):
            self._received(ev)
        elif isinstance(ev, RouteRefreshRequested):
            self._refresh(ev)
        elif isinstance(ev, StateChanged) and ev.new is State.OPENCONFIRM:
            self._resolve_collision()
        self._sink(self, ev)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.session.get_timer()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._drive(self.session.handle_timer)
        if self._incoming is not None:
            self._incoming.session.handle_timer(self._now())
            self._flush(self._incoming)

    # ------------------------------------------------------------------ connections

    def _start_connect(self) -> None:
        if self._connecting is None or self._connecting.done():
            self._connecting = self._loop.create_task(self._connect())

    async def _connect(self) -> None:
        p = self.peer
        sock: socket.socket | None = None
        try:
            sock = tcp_socket(p.address, p.local_address, p.password)
            self._apply_ttl(sock)
            await asyncio.wait_for(self._loop.sock_connect(sock, (p.address, p.port)), CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            if sock is not None:
                sock.close()
            log.debug("connect to %s failed: %s", p.label, exc)
            if self.session.state is State.CONNECT and self._conn is None:
                self._drive(self.session.connection_failed)
            return
        if self.session.state not in (State.CONNECT, State.ACTIVE) or self._conn is not None:
            sock.close()  # an incoming connection won the race meanwhile
            return
        self._outgoing = True
        await self._attach(sock, self.session, primary=True)

    def _apply_ttl(self, sock: socket.socket) -> None:
        p = self.peer
        if p.ttl_security:
            set_ttl(sock, 255, gtsm_min_ttl(1))
        elif p.multihop is not None:
            set_ttl(sock, p.multihop)
        elif (p.local_as or self.speaker.local_as) != p.peer_as:
            set_ttl(sock, 1)  # directly connected eBGP, as FRR and BIRD default to
        else:
            set_ttl(sock, 255)

    async def _attach(self, sock: socket.socket, session: Session, primary: bool) -> None:
        proto = _Protocol(self, session)
        if primary:
            self._conn = proto
        else:
            self._incoming = proto
        await self._loop.connect_accepted_socket(lambda: proto, sock)
        if primary:
            self._drive(session.connection_made)
        else:
            session.start(self._now())
            session.connection_made(self._now())
            self._flush(proto)

    def accept(self, sock: socket.socket) -> None:
        """An incoming connection from this peer's address (the listener already matched it)."""
        try:
            self._apply_ttl(sock)
        except OSError:
            sock.close()
            return
        state = self.session.state
        if state is State.IDLE or state is State.ESTABLISHED or self._incoming is not None:
            # Idle refuses (RFC 4271 §8.2.2); against Established the new connection loses (§6.8).
            sock.close()
            return
        if state in (State.CONNECT, State.ACTIVE) and self._conn is None:
            if self._connecting is not None:
                self._connecting.cancel()
            self._outgoing = False
            self._loop.create_task(self._attach(sock, self.session, primary=True))
            return
        # Our own connection is in OpenSent/OpenConfirm: a collision to resolve once OPENs are in.
        incoming = Session(replace(self.session.config, passive=True))
        self._loop.create_task(self._attach(sock, incoming, primary=False))

    def _resolve_collision(self) -> None:
        inc = self._incoming
        if inc is None or self._conn is None:
            return
        known = [s for s in (self.session, inc.session) if s.state is State.OPENCONFIRM]
        if not known or known[0].params is None:
            return
        remote_id = int(ipaddress.IPv4Address(known[0].params.peer_id))
        local_id = int(ipaddress.IPv4Address(self.speaker.router_id))
        # RFC 4271 §6.8: keep the connection opened by the side with the higher BGP Identifier.
        keep_ours = (local_id > remote_id) == self._outgoing
        now = self._now()
        if keep_ours:
            inc.session.collision_dump(now)
            self._flush(inc)
            self._incoming = None
            return
        loser = self._conn
        loser.session.collision_dump(now)
        data = loser.session.data_to_send()
        if loser.transport is not None:
            loser.transport.write(data)
            transport, loser.transport = loser.transport, None
            transport.close()
        while loser.session.next_event() is not None:
            pass
        self.session = inc.session
        self._conn, self._incoming = inc, None
        self._outgoing = not self._outgoing
        self._flush(inc)

    # ------------------------------------------------------------------ routing

    def _established(self, ev: SessionUp) -> None:
        params = ev.params
        conn = self._conn
        local_ip = None
        if conn is not None and conn.transport is not None:
            sockname = conn.transport.get_extra_info("sockname")
            if sockname:
                local_ip = ipaddress.ip_address(sockname[0].split("%")[0])
        p = self.peer
        v4 = (
            ipaddress.IPv4Address(p.next_hop_v4)
            if p.next_hop_v4
            else (local_ip if isinstance(local_ip, ipaddress.IPv4Address) else None)
        )
        v6 = (
            ipaddress.IPv6Address(p.next_hop_v6)
            if p.next_hop_v6
            else (
                local_ip
                if isinstance(local_ip, ipaddress.IPv6Address) and not local_ip.is_link_local
                else None
            )
        )
        ll = ipaddress.IPv6Address(p.link_local_v6) if p.link_local_v6 else None
        export = Export(
            self.local_as,
            params.peer_as,
            next_hop_v4=v4,
            next_hop_v6=v6,
            link_local_v6=ll,
            four_octet_as=params.ctx.four_octet_as,
            graceful_shutdown=self.graceful_shutdown,
            extended_next_hop=bool(params.extended_next_hop),
        )
        self.rib_out = AdjRibOut(export, params.ctx)
        self.established_since = time.time()
        self._peer_gr = params.peer_graceful_restart
        self._our_n_bit = bool(
            self.session.config.graceful_restart and self.session.config.graceful_restart.notification
        )
        if self.rib_in is not None and self._stale_timer is not None and self._peer_gr is None:
            # Back without graceful restart: stale routes go at once (RFC 4724 §4.2).
            self._stale_timer.cancel()
            self._stale_timer = None
            self.rib_in.flush_stale()
        # The restart window is over once a session is up: later sessions are not "restarting".
        if (
            self.session.config.graceful_restart is not None
            and self.session.config.graceful_restart.restarting
        ):
            self.session.config = self._session_config(restarting=False)
        if self._hold_initial():
            # The desired set is not known yet (e.g. the Kubernetes informers have not synced): sending
            # End-of-RIB now would make a graceful-restart helper flush our stale routes (RFC 4724 §4.2).
            self._initial_pending = True
        else:
            self._push(initial=True)

    def release_initial(self) -> None:
        """The desired set is complete: send the held initial advertisement and End-of-RIB."""
        if self._initial_pending:
            self._initial_pending = False
            self._push(initial=True)

    def _down(self, ev: SessionDown) -> None:
        self._initial_pending = False
        if self._streaming is not None:
            self._streaming.cancel()
            self._streaming = None
        self._push_pending = False
        self.rib_out = None
        self.established_since = None
        self.prefixes_sent = 0
        rib_in, gr = self.rib_in, self._peer_gr
        if rib_in is None:
            return
        kind = ev.reason.kind
        note = ev.reason.notification
        hard_reset = note is not None and note.code == 6 and note.subcode == 9
        # RFC 4724 §4.2 (and RFC 8538 §3 with the N bit): retain the peer's routes as stale.
        retain = (
            gr is not None
            and ev.was_established
            and (
                kind in (DownKind.TCP_FAILED, DownKind.HOLD_TIMER_EXPIRED)
                or (gr.notification and self._our_n_bit and not hard_reset)
            )
        )
        if not retain or gr is None:
            rib_in.clear()
            return
        kept = [Family(f.afi, f.safi) for f in gr.families]
        for family in list(rib_in.routes):
            if family not in kept:
                rib_in.routes.pop(family)
        rib_in.mark_stale(kept)
        if self._stale_timer is not None:
            self._stale_timer.cancel()
        self._stale_timer = self._loop.call_later(gr.restart_time, self._stale_expired)

    def _stale_expired(self) -> None:
        self._stale_timer = None
        if self.rib_in is not None:
            dropped = self.rib_in.flush_stale()
            log.info("%s: restart time over, %d stale routes removed", self.peer.label, dropped)

    def _received(self, ev: UpdateReceived) -> None:
        if self.rib_in is not None:
            if ev.looped:  # the session found our AS in the path (RFC 4271 §9.1.2)
                self.rib_in.withdraw(ev.update.withdrawals() + ev.update.announced())
                return
            self.rib_in.apply(ev.update)
            eor = ev.update.end_of_rib
            if eor is not None:
                self.rib_in.end_of_rib(eor)

    def _refresh(self, ev: RouteRefreshRequested) -> None:
        if ev.subtype != 0 or self.rib_out is None or self.session.params is None:
            return
        msgs = self.rib_out.refresh(ev.family, self.session.params.enhanced_route_refresh)
        self._send(msgs)

    def _send(self, msgs: list[bytes]) -> None:
        if not msgs:
            return
        self.session.send_updates(msgs, self._now())
        self._flush(self._conn)

    def _push(self, initial: bool = False) -> None:
        """Bring the peer to the desired set (and, the first time, send End-of-RIB)."""
        rib = self.rib_out
        params = self.session.params
        if rib is None or params is None or not self.session.established or self._initial_pending:
            return
        if self._streaming is not None:
            self._push_pending = True  # picked up when the initial table has gone out
            return
        desired = self._desired()
        if initial and len(desired) > STREAM_CHUNK:
            self._streaming = self._loop.create_task(self._stream_initial(rib, desired, params.families))
            return
        msgs = rib.update(desired, params.families)
        if initial:
            msgs += rib.end_of_rib(params.families)
        self.prefixes_sent = len(rib.sent)
        self._send(msgs)

    async def _stream_initial(
        self, rib: AdjRibOut, desired: Mapping[Prefix, RouteAttrs], families: tuple[Family, ...]
    ) -> None:
        """Send a large first table in chunks so the peer starts processing while we build the rest."""
        afis = {f.afi for f in families}
        items = [(p, r) for p, r in desired.items() if p[0] in afis]
        try:
            for i in range(0, len(items), STREAM_CHUNK):
                if self.rib_out is not rib or not self.session.established:
                    return  # the session went down meanwhile
                delta = rib.announce_delta(dict(items[i : i + STREAM_CHUNK]))
                if delta:
                    msgs = rib.pack(delta)
                    rib.commit(delta)
                    self._send(msgs)
                await asyncio.sleep(0)  # let the transport write while the next chunk is built
            if self.rib_out is not rib or not self.session.established:
                return
            msgs = (
                rib.update(self._desired(), families)
                if self._push_pending or self._desired() is not desired
                else []
            )
            self._push_pending = False
            self.prefixes_sent = len(rib.sent)
            self._send(msgs + rib.end_of_rib(families))
        finally:
            self._streaming = None

    def push(self) -> None:
        """The desired set changed."""
        self._push()

    def set_graceful_shutdown(self, on: bool) -> None:
        """Re-advertise everything with GRACEFUL_SHUTDOWN (RFC 8326) or back."""
        self.graceful_shutdown = on
        if self.rib_out is not None:
            self.rib_out.set_export(replace(self.rib_out.export, graceful_shutdown=on))
            self._push()

    # ------------------------------------------------------------------ status

    def status(self) -> dict[str, Any]:
        """Plain data for ``bgpsvc status``."""
        s = self.session
        params = s.params
        return {
            "name": self.peer.label,
            "address": self.peer.address,
            "peer_as": self.peer.peer_as,
            "local_as": self.local_as,
            "state": s.state.value,
            "uptime": (time.time() - self.established_since) if self.established_since else None,
            "last_down": str(s.last_down) if s.last_down else None,
            "prefixes_sent": self.prefixes_sent,
            "prefixes_received": {str(f): len(v) for f, v in s.received.items()},
            "messages_sent": s.messages_sent,
            "messages_received": s.messages_received,
            "updates_sent": s.updates_sent,
            "updates_received": s.updates_received,
            "hold_time": params.hold_time if params else None,
            "families": [str(f) for f in params.families] if params else [],
            "graceful_shutdown": self.graceful_shutdown,
            "unroutable": self.rib_out.unroutable if self.rib_out else 0,
        }

    def close(self) -> None:
        """Drop everything without a NOTIFICATION (used after stop)."""
        for proto in (self._conn, self._incoming):
            if proto is not None and proto.transport is not None:
                transport, proto.transport = proto.transport, None
                transport.abort()
        if self._connecting is not None:
            self._connecting.cancel()
        with contextlib.suppress(Exception):
            if self._timer is not None:
                self._timer.cancel()


__all__ = ["EventSink", "Family", "PeerRunner"]
