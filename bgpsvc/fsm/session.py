"""The BGP session as a sans-IO state machine (RFC 4271 §8).

Theory of operation
-------------------
A ``Session`` is the FSM of one TCP connection to a configured peer. It never touches a socket or a
clock: the driver (here the sans-IO ``Peer``) feeds it inputs and carries out its outputs.

Inputs:  ``start`` / ``stop`` (administrative), ``connection_made`` / ``connection_failed`` (TCP),
         ``receive_data(data, now)`` (``b""`` means the peer closed), ``handle_timer(now)``.
Outputs: ``data_to_send()`` bytes, ``next_event()`` events (``ConnectRequested`` and ``CloseRequested``
         ask the driver to open or close TCP), ``get_timer()`` the earliest deadline.

Every input becomes one of the RFC's events (``Input``) and is looked up in the transition table,
``(state, input) -> (action, next state)``, built in ``__init__`` from bound methods. Outcomes that the
RFC decides by looking at a message are worked out first and become inputs of their own: an OPEN is
negotiated before the lookup (``BGP_OPEN`` or ``BGP_OPEN_MSG_ERR``), an UPDATE is decoded and checked
against the prefix limit (``UPDATE_MSG``, ``UPDATE_MSG_ERR`` or ``MAX_PREFIX_EXCEEDED``), and starting
is ``MANUAL_START`` or its passive twin by configuration. So the table alone says where each input
leads; actions never pick a state. A pair missing from the table is an FSM error: NOTIFICATION code 5
with the RFC 6608 subcode of the current state, except in Idle, where the RFC ignores other events.

Timers are data: ``deadlines`` maps each running ``Timer`` to an absolute time. Jitter comes from the
``random.Random`` in the config, so tests are deterministic. DampPeerOscillations (§8.1.1): after a
failure the session waits in Idle for an idle-hold time that doubles per consecutive failure and resets
once a session has stayed up for ``stable_time``; its expiry is an AutomaticStart (event 3, or 5 when
passive).

After ``CloseRequested`` the driver must close the connection and feed nothing more from it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ..wire import (
    CeaseSubcode,
    ErrorCode,
    Family,
    MessageHeaderError,
    MessageType,
    Notification,
    NotificationError,
    Open,
    OpenMessageError,
    Prefix,
    RouteRefresh,
    RouteRefreshMessageError,
    Update,
    UpdateMessageError,
    decode_message,
)
from ..wire.framing import Framer
from .actions import SessionActions
from .config import SessionConfig
from .events import DownReason, SessionEvent, State, StateChanged
from .inputs import FSM_SUBCODES, MESSAGE_INPUTS, OPEN_HOLD_TIME, Input, Timer, looped
from .negotiate import SessionParams, negotiate

__all__ = ["FSM_SUBCODES", "OPEN_HOLD_TIME", "Input", "Session", "Timer", "looped"]

S, Ev = State, Input
_CONNECTED = (S.OPENSENT, S.OPENCONFIRM, S.ESTABLISHED)
_STARTS = (Ev.MANUAL_START, Ev.AUTOMATIC_START, Ev.MANUAL_START_PASSIVE, Ev.AUTOMATIC_START_PASSIVE)
Action = Callable[[float, object], None]


class Session(SessionActions):
    """One connection's BGP FSM (RFC 4271 §8), sans-IO."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.state = State.IDLE
        self.deadlines: dict[Timer, float] = {}
        self.params: SessionParams | None = None
        self.last_down: DownReason | None = None
        self.established_at: float | None = None
        self.failures = 0  # consecutive, for DampPeerOscillations
        self.admin_up = False
        self.messages_received = 0
        self.messages_sent = 0
        self.updates_received = 0
        self.updates_sent = 0
        #: Prefixes currently announced by the peer, per family (bounded by ``max_prefixes``).
        self.received: dict[Family, set[Prefix]] = {}
        self._max_prefix_reported: set[Family] = set()
        self._out = bytearray()
        self._events: deque[SessionEvent] = deque()
        self._framer = Framer()
        self._connected = False
        self._local_open: Open | None = None
        self.transitions = self._table()

    def _table(self) -> dict[tuple[State, Input], tuple[Action, State]]:
        """(state, input) -> (action, next state): RFC 4271 §8.2.2, state by state."""
        t: dict[tuple[State, Input], tuple[Action, State]] = {
            # Idle: only starting matters; other events are ignored.
            (S.IDLE, Ev.MANUAL_START): (self._start_connect, S.CONNECT),
            (S.IDLE, Ev.AUTOMATIC_START): (self._start_connect, S.CONNECT),
            (S.IDLE, Ev.MANUAL_START_PASSIVE): (self._start_passive, S.ACTIVE),
            (S.IDLE, Ev.AUTOMATIC_START_PASSIVE): (self._start_passive, S.ACTIVE),
            (S.IDLE, Ev.MANUAL_STOP): (self._admin_down, S.IDLE),
            (S.IDLE, Ev.TCP_CONNECTION_CONFIRMED): (self._refuse_connection, S.IDLE),
            # Connect: waiting for our outgoing TCP connection.
            (S.CONNECT, Ev.MANUAL_STOP): (self._stop_unconnected, S.IDLE),
            (S.CONNECT, Ev.CONNECT_RETRY_TIMER_EXPIRES): (self._connect, S.CONNECT),
            (S.CONNECT, Ev.TCP_CONNECTION_CONFIRMED): (self._send_open, S.OPENSENT),
            (S.CONNECT, Ev.TCP_CONNECTION_FAILS): (self._connect_failed, S.ACTIVE),
            # Active: waiting for the peer to connect (or for ConnectRetry to try again).
            (S.ACTIVE, Ev.MANUAL_STOP): (self._stop_unconnected, S.IDLE),
            (S.ACTIVE, Ev.CONNECT_RETRY_TIMER_EXPIRES): (self._connect, S.CONNECT),
            (S.ACTIVE, Ev.TCP_CONNECTION_CONFIRMED): (self._send_open, S.OPENSENT),
            (S.ACTIVE, Ev.TCP_CONNECTION_FAILS): (self._connect_failed, S.ACTIVE),
            # OpenSent: our OPEN is out, waiting for theirs.
            (S.OPENSENT, Ev.MANUAL_STOP): (self._stop_connected, S.IDLE),
            (S.OPENSENT, Ev.HOLD_TIMER_EXPIRES): (self._hold_expired, S.IDLE),
            (S.OPENSENT, Ev.TCP_CONNECTION_FAILS): (self._lost_in_opensent, S.ACTIVE),
            (S.OPENSENT, Ev.BGP_OPEN): (self._accept_open, S.OPENCONFIRM),
            (S.OPENSENT, Ev.BGP_HEADER_ERR): (self._send_error, S.IDLE),
            (S.OPENSENT, Ev.BGP_OPEN_MSG_ERR): (self._send_error, S.IDLE),
            (S.OPENSENT, Ev.OPEN_COLLISION_DUMP): (self._collision_dump, S.IDLE),
            (S.OPENSENT, Ev.NOTIF_MSG_VER_ERR): (self._notification_received, S.IDLE),
            (S.OPENSENT, Ev.NOTIF_MSG): (self._notification_received, S.IDLE),
            # OpenConfirm: OPENs exchanged, waiting for their KEEPALIVE.
            (S.OPENCONFIRM, Ev.MANUAL_STOP): (self._stop_connected, S.IDLE),
            (S.OPENCONFIRM, Ev.HOLD_TIMER_EXPIRES): (self._hold_expired, S.IDLE),
            (S.OPENCONFIRM, Ev.KEEPALIVE_TIMER_EXPIRES): (self._send_keepalive, S.OPENCONFIRM),
            (S.OPENCONFIRM, Ev.TCP_CONNECTION_FAILS): (self._connection_lost, S.IDLE),
            (S.OPENCONFIRM, Ev.BGP_HEADER_ERR): (self._send_error, S.IDLE),
            (S.OPENCONFIRM, Ev.BGP_OPEN_MSG_ERR): (self._send_error, S.IDLE),
            (S.OPENCONFIRM, Ev.OPEN_COLLISION_DUMP): (self._collision_dump, S.IDLE),
            (S.OPENCONFIRM, Ev.NOTIF_MSG_VER_ERR): (self._notification_received, S.IDLE),
            (S.OPENCONFIRM, Ev.NOTIF_MSG): (self._notification_received, S.IDLE),
            (S.OPENCONFIRM, Ev.KEEPALIVE_MSG): (self._establish, S.ESTABLISHED),
            # Established.
            (S.ESTABLISHED, Ev.MANUAL_STOP): (self._stop_connected, S.IDLE),
            (S.ESTABLISHED, Ev.HOLD_TIMER_EXPIRES): (self._hold_expired, S.IDLE),
            (S.ESTABLISHED, Ev.KEEPALIVE_TIMER_EXPIRES): (self._send_keepalive, S.ESTABLISHED),
            (S.ESTABLISHED, Ev.TCP_CONNECTION_FAILS): (self._connection_lost, S.IDLE),
            (S.ESTABLISHED, Ev.KEEPALIVE_MSG): (self._restart_hold, S.ESTABLISHED),
            (S.ESTABLISHED, Ev.UPDATE_MSG): (self._receive_update, S.ESTABLISHED),
            (S.ESTABLISHED, Ev.UPDATE_MSG_ERR): (self._send_error, S.IDLE),
            (S.ESTABLISHED, Ev.MAX_PREFIX_EXCEEDED): (self._max_prefix_cease, S.IDLE),
            (S.ESTABLISHED, Ev.ROUTE_REFRESH_MSG): (self._receive_route_refresh, S.ESTABLISHED),
            (S.ESTABLISHED, Ev.ROUTE_REFRESH_MSG_ERR): (self._send_error, S.IDLE),
            (S.ESTABLISHED, Ev.BGP_HEADER_ERR): (self._send_error, S.IDLE),
            (S.ESTABLISHED, Ev.BGP_OPEN_MSG_ERR): (self._send_error, S.IDLE),
            (S.ESTABLISHED, Ev.OPEN_COLLISION_DUMP): (self._collision_dump, S.IDLE),
            (S.ESTABLISHED, Ev.NOTIF_MSG_VER_ERR): (self._notification_received, S.IDLE),
            (S.ESTABLISHED, Ev.NOTIF_MSG): (self._notification_received, S.IDLE),
        }
        # RFC 5882 §3.2, RFC 9384: a BFD failure ends the session at once, and nothing restarts it
        # automatically (the owner arms the IdleHoldTimer again when BFD is Up, ``bfd_up``).
        t[(S.IDLE, Ev.BFD_DOWN)] = (self._bfd_hold, S.IDLE)
        for state in (S.CONNECT, S.ACTIVE):
            t[(state, Ev.BFD_DOWN)] = (self._bfd_down_unconnected, S.IDLE)
        for state in _CONNECTED:
            t[(state, Ev.BFD_DOWN)] = (self._bfd_down, S.IDLE)
        for state in (S.CONNECT, S.ACTIVE, *_CONNECTED):
            for start in _STARTS:  # "ManualStart and AutomaticStart events are ignored" outside Idle
                t[(state, start)] = (self._nothing, state)
        for state in _CONNECTED:
            # A second TCP connection is tracked by collision detection (§6.8), not by this session.
            t[(state, Ev.TCP_CONNECTION_CONFIRMED)] = (self._nothing, state)
        return t

    # ----------------------------------------------------------------- driver-facing API

    def start(self, now: float) -> None:
        """ManualStart (RFC 4271 §8.1.2 event 1, or event 4 when configured passive)."""
        self.admin_up = True
        self._handle(Ev.MANUAL_START_PASSIVE if self.config.peer.passive else Ev.MANUAL_START, now)

    def stop(
        self, now: float, message: str = "", subcode: int = CeaseSubcode.ADMINISTRATIVE_SHUTDOWN
    ) -> None:
        """ManualStop: Cease with an RFC 9003 shutdown communication if connected, then Idle."""
        self.admin_up = False
        if subcode in (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET):
            note = Notification.shutdown(message, subcode)
        else:
            note = Notification(ErrorCode.CEASE, subcode)
        self._handle(Ev.MANUAL_STOP, now, note)

    def connection_made(self, now: float) -> None:
        """TCP is up, outgoing (Tcp_CR_Acked) or incoming (TcpConnectionConfirmed)."""
        self._handle(Ev.TCP_CONNECTION_CONFIRMED, now)

    def connection_failed(self, now: float, detail: str = "") -> None:
        """The connection attempt failed or the established connection broke (TcpConnectionFails)."""
        self._handle(Ev.TCP_CONNECTION_FAILS, now, detail)

    def bfd_down(self, now: float, detail: str = "") -> None:
        """The peer's BFD session failed (RFC 5882 §3.2): Cease/BFD Down if connected (RFC 9384), then
        Idle with no automatic restart until :meth:`bfd_up`."""
        self._handle(Ev.BFD_DOWN, now, detail)

    def bfd_up(self, now: float) -> None:
        """BFD is Up again: in Idle, the IdleHoldTimer runs as after any failure (DampPeerOscillations,
        RFC 4271 §8.1.1) and its expiry starts the session."""
        if self.state is S.IDLE and self.admin_up and Timer.IDLE_HOLD not in self.deadlines:
            self._arm_idle_hold(now)

    def collision_dump(self, now: float) -> None:
        """OpenCollisionDump (RFC 4271 §6.8): this connection lost collision resolution."""
        self._handle(Ev.OPEN_COLLISION_DUMP, now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the peer; ``b""`` means the peer closed the connection."""
        if not self._connected:
            return
        if not data:
            self._handle(Ev.TCP_CONNECTION_FAILS, now, "connection closed by peer")
            return
        self._framer.feed(data)
        while self._connected:
            try:
                frame = self._framer.next_frame()
            except MessageHeaderError as exc:
                if self._framer.peek_type() == MessageType.NOTIFICATION:
                    # RFC 4271 §6.4: an error in a NOTIFICATION is never answered with one.
                    self._handle(Ev.TCP_CONNECTION_FAILS, now, f"malformed NOTIFICATION: {exc.reason}")
                else:
                    self._handle(Ev.BGP_HEADER_ERR, now, exc)
                return
            if frame is None:
                return
            self.messages_received += 1
            self._receive_frame(frame[0], frame[1], now)

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is at or before ``now``."""
        restart = Ev.AUTOMATIC_START_PASSIVE if self.config.peer.passive else Ev.AUTOMATIC_START
        for timer, inp in (
            (Timer.HOLD, Ev.HOLD_TIMER_EXPIRES),
            (Timer.KEEPALIVE, Ev.KEEPALIVE_TIMER_EXPIRES),
            (Timer.CONNECT_RETRY, Ev.CONNECT_RETRY_TIMER_EXPIRES),
            (Timer.IDLE_HOLD, restart),
        ):
            deadline = self.deadlines.get(timer)
            if deadline is not None and deadline <= now:
                del self.deadlines[timer]
                self._handle(inp, now)

    def get_timer(self) -> float | None:
        """The earliest deadline, or None."""
        return min(self.deadlines.values()) if self.deadlines else None

    def data_to_send(self) -> bytes:
        """Bytes for the peer, in order; empties the queue."""
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_event(self) -> SessionEvent | None:
        """The next event for the driver, or None."""
        return self._events.popleft() if self._events else None

    def send_updates(self, messages: Iterable[bytes], now: float) -> int:
        """Queue encoded UPDATEs (from the Adj-RIB-Out); only in Established. Returns how many were queued."""
        if self.state is not State.ESTABLISHED:
            return 0
        n = 0
        for m in messages:
            self._out += m
            n += 1
        if n:
            self.messages_sent += n
            self.updates_sent += n
            self._restart_keepalive(now)  # RFC 4271 §10: an UPDATE restarts the KeepaliveTimer
        return n

    def send_route_refresh(self, family: Family, now: float, subtype: int = 0) -> bool:
        """Ask the peer to re-send ``family`` (RFC 2918 §3), or mark BoRR/EoRR (RFC 7313 §4)."""
        if self.state is not State.ESTABLISHED or self.params is None or not self.params.route_refresh:
            return False
        self._send(RouteRefresh(family.afi, family.safi, subtype))
        return True

    @property
    def established(self) -> bool:
        """True in Established."""
        return self.state is State.ESTABLISHED

    # ----------------------------------------------------------------- dispatch

    def _handle(self, inp: Input, now: float, arg: object = None) -> None:
        entry = self.transitions.get((self.state, inp))
        if entry is None:
            if self.state is S.IDLE:
                return  # RFC 4271 §8.2.2: other events in Idle change nothing
            entry = (self._fsm_error, S.IDLE)  # any other event: FSM error (RFC 6608 subcodes)
            arg = inp
        action, new = entry
        action(now, arg)
        if new is not self.state:
            old, self.state = self.state, new
            self._events.append(StateChanged(old, new))

    def _receive_frame(self, msg_type: int, body: bytes, now: float) -> None:
        inp = MESSAGE_INPUTS[MessageType(msg_type)]
        if inp is Ev.UPDATE_MSG and self.state is not State.ESTABLISHED:
            self._handle(inp, now)  # an FSM error before any decoding
            return
        ctx = self.params.ctx if self.params is not None else None
        try:
            msg = decode_message(msg_type, body, ctx) if ctx is not None else decode_message(msg_type, body)
        except OpenMessageError as exc:
            self._handle(Ev.BGP_OPEN_MSG_ERR, now, exc)
            return
        except UpdateMessageError as exc:
            self._handle(Ev.UPDATE_MSG_ERR, now, exc)
            return
        except RouteRefreshMessageError as exc:
            self._handle(Ev.ROUTE_REFRESH_MSG_ERR, now, exc)
            return
        except NotificationError as exc:
            self._handle(Ev.BGP_HEADER_ERR, now, exc)
            return
        arg: object = msg
        if isinstance(msg, Notification) and msg.code == ErrorCode.OPEN_MESSAGE and msg.subcode == 1:
            inp = Ev.NOTIF_MSG_VER_ERR
        elif isinstance(msg, Open):
            inp, arg = self._open_input(msg)
        elif isinstance(msg, Update):
            inp, arg = self._update_input(msg)
        self._handle(inp, now, arg)

    def _open_input(self, peer_open: Open) -> tuple[Input, object]:
        """Negotiate first (RFC 4271 §6.2): an acceptable OPEN is ``BGP_OPEN``, else ``BGP_OPEN_MSG_ERR``."""
        if self._local_open is None:
            return Ev.BGP_OPEN, None  # not in OpenSent: the table makes it an FSM error
        try:
            return Ev.BGP_OPEN, negotiate(self.config, self._local_open, peer_open)
        except OpenMessageError as exc:
            return Ev.BGP_OPEN_MSG_ERR, exc

    def _update_input(self, update: Update) -> tuple[Input, object]:
        """``UPDATE_MSG`` with (update, looped), or ``MAX_PREFIX_EXCEEDED`` with (family, limit)."""
        params = self.params
        is_loop = params is not None and looped(update, self.config.local_as, params.ctx.four_octet_as)
        peer = self.config.peer
        limit = peer.max_prefixes
        if is_loop or limit is None or peer.max_prefix_action != "cease":
            return Ev.UPDATE_MSG, (update, is_loop)
        announced = update.announced()
        if not announced:
            return Ev.UPDATE_MSG, (update, False)
        withdrawn = set(update.withdrawals())
        counts: dict[Family, set[Prefix]] = {}
        for family, prefix in announced:
            bucket = self.received.get(family, set())
            if prefix not in bucket or (family, prefix) in withdrawn:
                counts.setdefault(family, set()).add(prefix)
        for family, new in counts.items():
            bucket = self.received.get(family, set())
            kept = len(bucket) - sum(1 for f, p in withdrawn if f == family and p in bucket)
            if kept + len(new) > limit:
                return Ev.MAX_PREFIX_EXCEEDED, (family, limit)
        return Ev.UPDATE_MSG, (update, False)
