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
from enum import Enum

from ..wire import (
    AsPath,
    CeaseSubcode,
    ErrorCode,
    Family,
    FsmSubcode,
    Keepalive,
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
    encode,
    merge_as4,
)
from ..wire.framing import Framer
from ..wire.messages import _KEEPALIVE as KEEPALIVE_BYTES
from .config import SessionConfig
from .events import (
    CloseRequested,
    ConnectRequested,
    DownKind,
    DownReason,
    MaxPrefixExceeded,
    RouteRefreshRequested,
    SessionDown,
    SessionEvent,
    SessionUp,
    State,
    StateChanged,
    UpdateReceived,
)
from .negotiate import SessionParams, build_open, negotiate

OPEN_HOLD_TIME = 240.0  # "large value" hold timer while waiting for OPEN (RFC 4271 §8.2.2, 4 minutes)


def looped(update: Update, local_as: int, four_octet_as: bool) -> bool:
    """Whether the UPDATE's (true) AS path contains ``local_as`` (RFC 4271 §9.1.2, RFC 6793 §4.2.3)."""
    attrs = update.attributes if four_octet_as else merge_as4(update.attributes)
    for a in attrs:
        if isinstance(a, AsPath):
            return local_as in a.asns
    return False


class Timer(Enum):
    """Session timers (RFC 4271 §10, §8.1.1)."""

    CONNECT_RETRY = "ConnectRetryTimer"
    HOLD = "HoldTimer"
    KEEPALIVE = "KeepaliveTimer"
    IDLE_HOLD = "IdleHoldTimer"


class Input(Enum):
    """FSM events (RFC 4271 §8.1, numbers in comments); ROUTE_REFRESH_* from RFC 2918/7313."""

    MANUAL_START = "ManualStart"  # 1
    MANUAL_STOP = "ManualStop"  # 2
    AUTOMATIC_START = "AutomaticStart"  # 3: the IdleHoldTimer expired
    MANUAL_START_PASSIVE = "ManualStart_with_PassiveTcpEstablishment"  # 4
    AUTOMATIC_START_PASSIVE = "AutomaticStart_with_PassiveTcpEstablishment"  # 5
    CONNECT_RETRY_TIMER_EXPIRES = "ConnectRetryTimer_Expires"  # 9
    HOLD_TIMER_EXPIRES = "HoldTimer_Expires"  # 10
    KEEPALIVE_TIMER_EXPIRES = "KeepaliveTimer_Expires"  # 11
    TCP_CONNECTION_CONFIRMED = "TcpConnectionConfirmed"  # 16/17: outgoing acked or incoming confirmed
    TCP_CONNECTION_FAILS = "TcpConnectionFails"  # 18
    BGP_OPEN = "BGPOpen"  # 19: an OPEN that negotiated
    BGP_HEADER_ERR = "BGPHeaderErr"  # 21
    BGP_OPEN_MSG_ERR = "BGPOpenMsgErr"  # 22: a malformed or unacceptable OPEN
    OPEN_COLLISION_DUMP = "OpenCollisionDump"  # 23
    NOTIF_MSG_VER_ERR = "NotifMsgVerErr"  # 24
    NOTIF_MSG = "NotifMsg"  # 25
    KEEPALIVE_MSG = "KeepAliveMsg"  # 26
    UPDATE_MSG = "UpdateMsg"  # 27
    UPDATE_MSG_ERR = "UpdateMsgErr"  # 28
    MAX_PREFIX_EXCEEDED = "MaxPrefixExceeded"  # RFC 4486: an UPDATE over the limit, action cease
    ROUTE_REFRESH_MSG = "RouteRefreshMsg"
    ROUTE_REFRESH_MSG_ERR = "RouteRefreshMsgErr"


S, Ev = State, Input
_CONNECTED = (S.OPENSENT, S.OPENCONFIRM, S.ESTABLISHED)
_STARTS = (Ev.MANUAL_START, Ev.AUTOMATIC_START, Ev.MANUAL_START_PASSIVE, Ev.AUTOMATIC_START_PASSIVE)
Action = Callable[[float, object], None]

#: RFC 6608 §3: the FSM error subcode names the state the unexpected message arrived in.
FSM_SUBCODES = {
    S.OPENSENT: FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENSENT,
    S.OPENCONFIRM: FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENCONFIRM,
    S.ESTABLISHED: FsmSubcode.UNEXPECTED_MESSAGE_IN_ESTABLISHED,
}

_MESSAGE_INPUTS = {
    MessageType.OPEN: Ev.BGP_OPEN,
    MessageType.UPDATE: Ev.UPDATE_MSG,
    MessageType.NOTIFICATION: Ev.NOTIF_MSG,
    MessageType.KEEPALIVE: Ev.KEEPALIVE_MSG,
    MessageType.ROUTE_REFRESH: Ev.ROUTE_REFRESH_MSG,
}


class Session:
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
        inp = _MESSAGE_INPUTS[MessageType(msg_type)]
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

    # ----------------------------------------------------------------- helpers

    def _send(self, msg: Open | Notification | Keepalive | RouteRefresh) -> None:
        self._out += KEEPALIVE_BYTES if isinstance(msg, Keepalive) else encode(msg)
        self.messages_sent += 1

    def _jitter(self, seconds: float) -> float:
        # RFC 4271 §10: jitter timers by a random factor in [0.75, 1.0].
        return seconds * self.config.rng.uniform(0.75, 1.0)

    def _restart_keepalive(self, now: float) -> None:
        if self.params is not None and self.params.hold_time:
            self.deadlines[Timer.KEEPALIVE] = now + self._jitter(self.params.keepalive_time)

    def _restart_hold_timer(self, now: float) -> None:
        if self.params is not None and self.params.hold_time:
            self.deadlines[Timer.HOLD] = now + self.params.hold_time

    def _close(self) -> None:
        if self._connected:
            self._connected = False
            self._events.append(CloseRequested())
        self._framer = Framer()

    def _go_idle(self, now: float, reason: DownReason, damp: bool = True, restart: bool = True) -> None:
        """Release everything for Idle (RFC 4271 §8.2.2), with peer oscillation damping."""
        was_connected = self.state in _CONNECTED
        was_established = self.state is State.ESTABLISHED
        self._close()
        self.deadlines.clear()
        self.params = None
        self.received.clear()
        self._max_prefix_reported.clear()
        self.last_down = reason
        if was_connected:
            self._events.append(SessionDown(reason, was_established))
        peer = self.config.peer
        if (
            was_established
            and self.established_at is not None
            and now - self.established_at >= peer.stable_time
        ):
            self.failures = 0
        self.established_at = None
        if self.admin_up and restart:
            if damp:
                self.failures += 1
            delay = min(peer.idle_hold_time * 2 ** max(self.failures - 1, 0), peer.max_idle_hold_time)
            self.deadlines[Timer.IDLE_HOLD] = now + self._jitter(delay) if delay else now

    # ----------------------------------------------------------------- actions (table entries)

    def _nothing(self, now: float, arg: object) -> None:
        return None

    def _start_connect(self, now: float, arg: object) -> None:
        self.admin_up = True
        self.deadlines.pop(Timer.IDLE_HOLD, None)
        self._connect(now, arg)

    def _start_passive(self, now: float, arg: object) -> None:
        self.admin_up = True
        self.deadlines.pop(Timer.IDLE_HOLD, None)

    def _admin_down(self, now: float, arg: object) -> None:
        self.deadlines.clear()
        self.last_down = DownReason(DownKind.ADMIN_STOP)

    def _refuse_connection(self, now: float, arg: object) -> None:
        self._events.append(CloseRequested())

    def _connect(self, now: float, arg: object) -> None:
        self.deadlines[Timer.CONNECT_RETRY] = now + self._jitter(self.config.peer.connect_retry_time)
        self._events.append(ConnectRequested())

    def _connect_failed(self, now: float, arg: object) -> None:
        self._connected = False
        if not self.config.peer.passive and Timer.CONNECT_RETRY not in self.deadlines:
            self.deadlines[Timer.CONNECT_RETRY] = now + self._jitter(self.config.peer.connect_retry_time)

    def _stop_unconnected(self, now: float, arg: object) -> None:
        self.deadlines.clear()
        self._close()
        self.last_down = DownReason(DownKind.ADMIN_STOP)

    def _send_open(self, now: float, arg: object) -> None:
        self._connected = True
        self.deadlines.pop(Timer.CONNECT_RETRY, None)
        self._local_open = build_open(self.config)
        self._send(self._local_open)
        self.deadlines[Timer.HOLD] = now + OPEN_HOLD_TIME

    def _stop_connected(self, now: float, arg: object) -> None:
        note = arg if isinstance(arg, Notification) else Notification.shutdown()
        self._send(note)
        self._go_idle(now, DownReason(DownKind.ADMIN_STOP, note), damp=False, restart=False)

    def _hold_expired(self, now: float, arg: object) -> None:
        note = Notification(ErrorCode.HOLD_TIMER_EXPIRED)
        self._send(note)
        self._go_idle(now, DownReason(DownKind.HOLD_TIMER_EXPIRED, note))

    def _lost_in_opensent(self, now: float, arg: object) -> None:
        # RFC 4271 §8.2.2 OpenSent, event 18: close, restart ConnectRetry, go Active.
        down = DownReason(DownKind.TCP_FAILED, detail=str(arg or ""))
        self._close()
        self.last_down = down
        self._events.append(SessionDown(down, False))
        self.deadlines.clear()
        if not self.config.peer.passive:
            self.deadlines[Timer.CONNECT_RETRY] = now + self._jitter(self.config.peer.connect_retry_time)

    def _connection_lost(self, now: float, arg: object) -> None:
        self._go_idle(now, DownReason(DownKind.TCP_FAILED, detail=str(arg or "")))

    def _send_error(self, now: float, arg: object) -> None:
        assert isinstance(arg, NotificationError)
        note = Notification.from_error(arg)
        self._send(note)
        self._go_idle(now, DownReason(DownKind.NOTIFICATION_SENT, note, arg.reason))

    def _fsm_error(self, now: float, arg: object) -> None:
        assert isinstance(arg, Input)
        what = f"unexpected {arg.value} in {self.state.value}"
        if self._connected:
            note = Notification(ErrorCode.FSM, FSM_SUBCODES.get(self.state, FsmSubcode.UNSPECIFIED))
            self._send(note)
            reason = DownReason(DownKind.NOTIFICATION_SENT, note, what)
        else:
            reason = DownReason(DownKind.TCP_FAILED, detail=what)
        self._go_idle(now, reason)

    def _collision_dump(self, now: float, arg: object) -> None:
        note = Notification(ErrorCode.CEASE, CeaseSubcode.CONNECTION_COLLISION_RESOLUTION)
        self._send(note)
        self.admin_up = False  # the surviving connection carries the peering on
        self._go_idle(now, DownReason(DownKind.COLLISION, note), damp=False, restart=False)

    def _notification_received(self, now: float, arg: object) -> None:
        assert isinstance(arg, Notification)
        # NotifMsgVerErr does not count as a failure for damping (RFC 4271 §8.2.2, event 24).
        damp = not (arg.code == ErrorCode.OPEN_MESSAGE and arg.subcode == 1)
        self._go_idle(now, DownReason(DownKind.NOTIFICATION_RECEIVED, arg), damp=damp)

    def _accept_open(self, now: float, arg: object) -> None:
        assert isinstance(arg, SessionParams)
        self.params = arg
        self._framer.max_size = arg.ctx.max_message_size
        self.deadlines.pop(Timer.CONNECT_RETRY, None)
        self._send(Keepalive())
        if arg.hold_time:
            self._restart_hold_timer(now)
            self._restart_keepalive(now)
        else:
            self.deadlines.pop(Timer.HOLD, None)

    def _send_keepalive(self, now: float, arg: object) -> None:
        self._send(Keepalive())
        self._restart_keepalive(now)

    def _establish(self, now: float, arg: object) -> None:
        assert self.params is not None
        self._restart_hold_timer(now)
        self.established_at = now
        self._events.append(SessionUp(self.params))

    def _restart_hold(self, now: float, arg: object) -> None:
        self._restart_hold_timer(now)

    def _max_prefix_cease(self, now: float, arg: object) -> None:
        assert isinstance(arg, tuple)
        family, limit = arg
        assert isinstance(family, Family) and isinstance(limit, int)
        # RFC 4486 §4: data is AFI, SAFI and the configured upper bound.
        data = family.afi.to_bytes(2, "big") + bytes((family.safi,)) + limit.to_bytes(4, "big")
        note = Notification(ErrorCode.CEASE, CeaseSubcode.MAXIMUM_PREFIXES_REACHED, data)
        self._send(note)
        self._go_idle(now, DownReason(DownKind.MAX_PREFIX, note, f"{family}: > {limit}"))

    def _receive_update(self, now: float, arg: object) -> None:
        assert isinstance(arg, tuple)
        update, is_loop = arg
        assert isinstance(update, Update)
        self._restart_hold_timer(now)
        self.updates_received += 1
        for family, prefix in update.withdrawals():
            self.received.get(family, set()).discard(prefix)
        if is_loop:
            # RFC 4271 §9.1.2: a route whose AS_PATH holds our AS is a loop; it replaces (withdraws) what
            # the peer had sent for those prefixes and is not counted.
            for family, prefix in update.announced():
                self.received.get(family, set()).discard(prefix)
            self._events.append(UpdateReceived(update, looped=True))
            return
        limit = self.config.peer.max_prefixes
        for family, prefix in update.announced():
            bucket = self.received.setdefault(family, set())
            if limit is not None and len(bucket) >= limit and prefix not in bucket:
                # Action "log" (a "cease" UPDATE over the limit arrived as MAX_PREFIX_EXCEEDED).
                if family not in self._max_prefix_reported:
                    self._max_prefix_reported.add(family)
                    self._events.append(MaxPrefixExceeded(family, limit + 1))
                continue
            bucket.add(prefix)
        self._events.append(UpdateReceived(update))

    def _receive_route_refresh(self, now: float, arg: object) -> None:
        assert isinstance(arg, RouteRefresh) and self.params is not None
        family = Family(arg.afi, arg.safi)
        # RFC 2918 §4: we answer when we advertised the capability, for families we advertised (and the
        # session carries); RFC 7313 §5: unknown subtypes are ignored.
        if not self.config.peer.route_refresh or family not in self.params.families or arg.subtype > 2:
            return
        self._events.append(RouteRefreshRequested(family, arg.subtype))
