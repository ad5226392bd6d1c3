"""What each transition of the session FSM does (RFC 4271 §8.2.2): the actions of ``Session``'s table.

``SessionActions`` is the half of ``Session`` that changes timers, sends messages and emits events; the
table in ``session.py`` says which action runs for which (state, input) and where it leads. An action
never picks a state.
"""

from __future__ import annotations

from collections import deque

from ..wire import (
    CeaseSubcode,
    ErrorCode,
    Family,
    FsmSubcode,
    Keepalive,
    Notification,
    NotificationError,
    Open,
    Prefix,
    RouteRefresh,
    Update,
    encode,
)
from ..wire.framing import Framer
from ..wire.messages import KEEPALIVE_BYTES
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
    UpdateReceived,
)
from .inputs import FSM_SUBCODES, OPEN_HOLD_TIME, Input, Timer
from .negotiate import SessionParams, build_open

_CONNECTED = (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED)


class SessionActions:
    """The session's state and the actions its transition table runs."""

    config: SessionConfig
    state: State
    deadlines: dict[Timer, float]
    params: SessionParams | None
    last_down: DownReason | None
    established_at: float | None
    failures: int
    admin_up: bool
    messages_sent: int
    updates_received: int
    received: dict[Family, set[Prefix]]
    _max_prefix_reported: set[Family]
    _out: bytearray
    _events: deque[SessionEvent]
    _framer: Framer
    _connected: bool
    _local_open: Open | None

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
        if damp and self.admin_up:
            self.failures += 1
        if self.admin_up and restart:
            self._arm_idle_hold(now)

    def _arm_idle_hold(self, now: float) -> None:
        """The IdleHoldTimer, doubling per consecutive failure (RFC 4271 §8.1.1 DampPeerOscillations)."""
        peer = self.config.peer
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

    def _bfd_down(self, now: float, arg: object) -> None:
        note = Notification(ErrorCode.CEASE, CeaseSubcode.BFD_DOWN)  # RFC 9384
        ours = self.config.graceful_restart
        theirs = self.params.peer_graceful_restart if self.params is not None else None
        if ours is not None and ours.notification and theirs is not None and theirs.notification:
            # RFC 8538 §3.1, §5.1: with the N bit on both sides a plain Cease would leave our routes with
            # the peer as stale; a Hard Reset carrying the Cease/BFD Down asks it not to keep them.
            inner = bytes((ErrorCode.CEASE, CeaseSubcode.BFD_DOWN))
            note = Notification(ErrorCode.CEASE, CeaseSubcode.HARD_RESET, inner)
        self._send(note)
        self._go_idle(now, DownReason(DownKind.BFD_DOWN, note, str(arg or "")), restart=False)

    def _bfd_down_unconnected(self, now: float, arg: object) -> None:
        self.deadlines.clear()
        self._close()
        self.last_down = DownReason(DownKind.BFD_DOWN, detail=str(arg or ""))

    def _bfd_hold(self, now: float, arg: object) -> None:
        self.deadlines.pop(Timer.IDLE_HOLD, None)  # no AutomaticStart while BFD is down

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
