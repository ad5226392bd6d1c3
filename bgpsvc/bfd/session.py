"""One BFD session as a sans-IO state machine (RFC 5880 §6), asynchronous mode.

Theory of operation
-------------------
A ``BfdSession`` never touches a socket or a clock. Inputs: ``receive_packet(data, now, ttl=None)``
(bytes or a decoded :class:`ControlPacket`), ``handle_timer(now)``, ``admin_down(now)``,
``enable(now)``, ``set_timers(now, ...)``. Outputs: ``packets_to_send()`` / ``datagrams_to_send()``,
``next_event()`` (:class:`BfdStateChanged`), ``get_timer()`` (the earliest deadline) and ``status()``.

The three-way handshake is ``TRANSITIONS``: ``(local state, received state) -> (next state, diag)``,
exactly the table of RFC 5880 §6.2 / §6.8.6; local AdminDown discards every packet. Detection timeout
(§6.8.4) and the administrative inputs (§6.8.16) are the only other ways the state changes.

Timers (§6.8.2, §6.8.3): we advertise ``desired_min_tx_us``, raised to 1 s while not Up, and
``required_min_rx_us``. A change while Up is announced with a Poll Sequence (§6.5); until the Final
comes back, a larger Desired Min TX is not used for sending and a smaller Required Min RX is not used
for the detection time (``_tx_in_use`` / ``_rx_in_use``). Going Up is such a change (1 s -> the
configured rate), so a Poll follows it, as FRR and BIRD do. Periodic packets are jittered to 75-100%
of the interval, 75-90% with a detect multiplier of 1 (§6.8.7), from the config's ``random.Random``.

A state change is sent at once rather than at the next periodic slot (as FRR and BIRD do), and so is
a Final (§6.5). Not implemented: Demand mode (the D bit is never set and ignored on receipt) and the
Echo function (Required Min Echo RX Interval is always 0); the C bit is 0 (we share fate with the
control plane).
"""

from __future__ import annotations

from collections import Counter, deque
from enum import Enum

from . import auth as bfd_auth
from .config import SLOW_TX_US, BfdConfig, check_timers
from .events import BfdEvent, BfdStateChanged, BfdStatus, ChangeReason
from .packet import ControlPacket, Diag, DropReason, State, decode_control, encode_control

S = State
NEIGHBOR_DOWN = Diag.NEIGHBOR_SIGNALED_SESSION_DOWN

#: (local state, received state) -> (next state, new bfd.LocalDiag or None to keep it)
#: (RFC 5880 §6.2 diagram, §6.8.6 last steps). Local AdminDown discards everything before this table.
TRANSITIONS: dict[tuple[State, State], tuple[State, Diag | None]] = {
    (S.DOWN, S.ADMIN_DOWN): (S.DOWN, None),
    (S.DOWN, S.DOWN): (S.INIT, None),
    (S.DOWN, S.INIT): (S.UP, None),
    (S.DOWN, S.UP): (S.DOWN, None),
    (S.INIT, S.ADMIN_DOWN): (S.DOWN, NEIGHBOR_DOWN),
    (S.INIT, S.DOWN): (S.INIT, None),
    (S.INIT, S.INIT): (S.UP, None),
    (S.INIT, S.UP): (S.UP, None),
    (S.UP, S.ADMIN_DOWN): (S.DOWN, NEIGHBOR_DOWN),
    (S.UP, S.DOWN): (S.DOWN, NEIGHBOR_DOWN),
    (S.UP, S.INIT): (S.UP, None),
    (S.UP, S.UP): (S.UP, None),
}


class Timer(Enum):
    """Session timers: periodic transmission (§6.8.7) and detection (§6.8.4)."""

    TX = "transmit"
    DETECT = "detection"


class BfdSession:
    """RFC 5880 asynchronous-mode session; see the module docstring."""

    def __init__(self, config: BfdConfig, local_discr: int, now: float) -> None:
        if not 1 <= local_discr <= 0xFFFFFFFF:
            raise ValueError("local_discr: 1..2**32-1 (RFC 5880 §6.8.1)")
        self.config = config
        self.key = config.key
        self.local_discr = local_discr
        self.state = S.DOWN
        self.remote_state = S.DOWN
        self.remote_discr = 0
        self.local_diag = Diag.NO_DIAGNOSTIC
        self.remote_diag = 0
        self.detect_mult = config.detect_mult
        self._cfg_tx = config.desired_min_tx_us
        self._cfg_rx = config.required_min_rx_us
        self.remote_min_rx = 1  # bfd.RemoteMinRxInterval starts at 1 µs (§6.8.1)
        self.remote_desired_tx = 0
        self.remote_detect_mult = 0
        self._tx_in_use = self._advertised_tx()
        self._rx_in_use = self._cfg_rx
        self._poll: tuple[int, int] | None = None  # (tx, rx) announced by the Poll in progress
        self._xmit_seq = config.rng.getrandbits(32)
        self._rcv_seq: int | None = None  # bfd.RcvAuthSeq once bfd.AuthSeqKnown
        self.deadlines: dict[Timer, float] = {}
        self._out: deque[ControlPacket] = deque()
        self._events: deque[BfdEvent] = deque()
        self.dropped: Counter[DropReason] = Counter()
        self.flaps = 0
        self.last_down_diag = Diag.NO_DIAGNOSTIC
        self.packets_sent = 0
        self.packets_received = 0
        self.last_change: float | None = None
        if not config.passive:
            self.deadlines[Timer.TX] = now

    # ------------------------------------------------------------------ outputs

    def packets_to_send(self) -> tuple[ControlPacket, ...]:
        """Control packets queued since the last call (signed when auth is configured)."""
        out = tuple(self._out)
        self._out.clear()
        return out

    def datagrams_to_send(self) -> tuple[bytes, ...]:
        """The same as :meth:`packets_to_send`, encoded."""
        return tuple(encode_control(p) for p in self.packets_to_send())

    def next_event(self) -> BfdEvent | None:
        """The next state change, or None."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest deadline, or None."""
        return min(self.deadlines.values(), default=None)

    # ------------------------------------------------------------------ inputs

    def receive_packet(self, data: bytes | ControlPacket, now: float, ttl: int | None = None) -> None:
        """One received packet (RFC 5880 §6.8.6); ``ttl`` as received, checked per RFC 5881/5883 §5."""
        pkt = decode_control(data) if isinstance(data, bytes | bytearray | memoryview) else data
        raw = bytes(data) if not isinstance(data, ControlPacket) else None
        reason = self._refuse(pkt, raw, ttl) if isinstance(pkt, ControlPacket) else pkt
        if reason is not None:
            self.dropped[reason] += 1
            return
        assert isinstance(pkt, ControlPacket)
        self.packets_received += 1
        self._accept(pkt, now)

    def handle_timer(self, now: float) -> None:
        """Run every timer whose deadline has passed."""
        if self.deadlines.get(Timer.DETECT, now + 1) <= now:
            del self.deadlines[Timer.DETECT]
            self._detection_expired(now)
        if self.deadlines.get(Timer.TX, now + 1) <= now:
            self._send(now, poll=self._poll is not None)
            self._schedule_tx(now)

    def admin_down(self, now: float, diag: Diag = Diag.ADMINISTRATIVELY_DOWN) -> None:
        """Take the session AdminDown (§6.8.16); the peer is told so and must not see it as a failure."""
        if self.state is not S.ADMIN_DOWN:
            self._change(S.ADMIN_DOWN, diag, ChangeReason.ADMIN_DOWN, now)

    def enable(self, now: float) -> None:
        """Leave AdminDown for Down (§6.8.16); the handshake starts again."""
        if self.state is S.ADMIN_DOWN:
            self._change(S.DOWN, Diag.NO_DIAGNOSTIC, ChangeReason.ADMIN_ENABLE, now)

    def set_timers(
        self,
        now: float,
        desired_min_tx_us: int | None = None,
        required_min_rx_us: int | None = None,
        detect_mult: int | None = None,
    ) -> None:
        """Change timers (§6.8.3); while Up the change is negotiated with a Poll Sequence."""
        tx = self._cfg_tx if desired_min_tx_us is None else desired_min_tx_us
        rx = self._cfg_rx if required_min_rx_us is None else required_min_rx_us
        mult = self.detect_mult if detect_mult is None else detect_mult
        check_timers(tx, rx, mult)
        if (tx, rx, mult) == (self._cfg_tx, self._cfg_rx, self.detect_mult):
            return
        self._cfg_tx, self._cfg_rx, self.detect_mult = tx, rx, mult
        self._parameters_changed(now, force_poll=True)

    # ------------------------------------------------------------------ reception

    def _refuse(self, pkt: ControlPacket, raw: bytes | None, ttl: int | None) -> DropReason | None:
        """The per-session checks of §6.8.6 and RFC 5881/5883 §5; None if the packet is acceptable."""
        if ttl is not None and ttl < self.config.accepted_ttl:
            return DropReason.TTL
        if pkt.your_discriminator not in (0, self.local_discr):
            return DropReason.NO_SESSION
        cfg = self.config.auth
        if cfg is None:
            return DropReason.AUTH_UNEXPECTED if pkt.auth is not None else None
        if pkt.auth is None:
            return DropReason.AUTH_MISSING
        if not bfd_auth.verify(pkt, cfg, raw):
            return DropReason.AUTH_FAILED
        seq = getattr(pkt.auth, "sequence", 0)
        if not bfd_auth.sequence_ok(cfg.auth_type, seq, self._rcv_seq, self.detect_mult):
            return DropReason.AUTH_FAILED
        self._rcv_seq = seq
        return None

    def _accept(self, pkt: ControlPacket, now: float) -> None:
        """§6.8.6 from "Set bfd.RemoteDiscr" on, for a packet that passed every check."""
        self.remote_discr = pkt.my_discriminator
        self.remote_state = pkt.state
        self.remote_diag = pkt.diag
        self.remote_detect_mult = pkt.detect_mult
        self.remote_desired_tx = pkt.desired_min_tx
        old_tx_interval = self.tx_interval_us
        self.remote_min_rx = pkt.required_min_rx
        if pkt.final and self._poll is not None:
            self._poll_terminated()
        if self.state is S.ADMIN_DOWN:
            self.dropped[DropReason.ADMIN_DOWN] += 1
            return
        new_state, diag = TRANSITIONS[self.state, pkt.state]
        if new_state is not self.state:
            reason = ChangeReason.PEER_STATE
            if diag is NEIGHBOR_DOWN:
                admin = pkt.state is S.ADMIN_DOWN
                reason = ChangeReason.NEIGHBOR_ADMIN_DOWN if admin else ChangeReason.NEIGHBOR_DOWN
            self._change(new_state, diag, reason, now)
        if pkt.poll:
            self._send(now, final=True)  # §6.5: at once, regardless of the transmit timer
        self._retime_tx(old_tx_interval, now)
        if self.detection_time_us:
            self.deadlines[Timer.DETECT] = now + self.detection_time_us / 1e6
        else:
            self.deadlines.pop(Timer.DETECT, None)  # we asked for no packets (Required Min RX 0)

    def _detection_expired(self, now: float) -> None:
        """§6.8.4, and §6.8.1: bfd.RemoteDiscr (and the auth sequence) are forgotten."""
        self.remote_discr = 0
        self.remote_state = S.DOWN
        self._rcv_seq = None
        if self.state in (S.INIT, S.UP):
            expired = Diag.CONTROL_DETECTION_TIME_EXPIRED
            self._change(S.DOWN, expired, ChangeReason.DETECTION_TIME_EXPIRED, now)

    # ------------------------------------------------------------------ state and timers

    def _change(self, new: State, diag: Diag | None, reason: ChangeReason, now: float) -> None:
        old = self.state
        self.state = new
        if diag is not None:
            self.local_diag = diag
        elif new is S.UP:
            self.local_diag = Diag.NO_DIAGNOSTIC  # the reason for this change is no failure
        if old is S.UP:
            self.flaps += 1
            self.last_down_diag = self.local_diag
        self.last_change = now
        self._events.append(BfdStateChanged(self.key, old, new, self.local_diag, reason))
        self._parameters_changed(now)
        self._send(now, poll=self._poll is not None)  # tell the peer at once
        self._schedule_tx(now)

    def _advertised_tx(self) -> int:
        """bfd.DesiredMinTxInterval: at least 1 s while not Up (§6.8.3)."""
        return self._cfg_tx if self.state is S.UP else max(self._cfg_tx, SLOW_TX_US)

    def _parameters_changed(self, now: float, force_poll: bool = False) -> None:
        """Apply what we advertise; while Up, start a Poll Sequence and hold back unsafe parts (§6.8.3)."""
        tx, rx = self._advertised_tx(), self._cfg_rx
        if self.state is not S.UP:
            self._poll = None
            self._tx_in_use, self._rx_in_use = tx, rx
            return
        if (tx, rx) == (self._tx_in_use, self._rx_in_use) and not force_poll:
            return
        old_tx_interval = self.tx_interval_us
        self._tx_in_use = min(self._tx_in_use, tx)  # sending faster is always safe
        self._rx_in_use = max(self._rx_in_use, rx)  # so is expecting packets more slowly
        if self._poll is None:
            self._poll = (tx, rx)
        self._retime_tx(old_tx_interval, now)

    def _poll_terminated(self) -> None:
        """A Final for our Poll (§6.5): what that Poll announced is now in force."""
        assert self._poll is not None
        polled_tx, polled_rx = self._poll
        tx, rx = self._advertised_tx(), self._cfg_rx
        self._tx_in_use = min(polled_tx, tx)
        self._rx_in_use = max(polled_rx, rx)
        self._poll = (tx, rx) if (tx, rx) != (polled_tx, polled_rx) and self.state is S.UP else None

    @property
    def tx_interval_us(self) -> int:
        """The negotiated transmit interval before jitter (§6.8.2); 0 when the peer wants nothing."""
        if self.remote_min_rx == 0:
            return 0
        return max(self._tx_in_use, self.remote_min_rx)

    @property
    def rx_interval_us(self) -> int:
        """The agreed interval the peer sends at (§6.8.4)."""
        return max(self._rx_in_use, self.remote_desired_tx)

    @property
    def detection_time_us(self) -> int:
        """The peer's Detect Mult times the agreed receive interval (§6.8.4)."""
        return self.remote_detect_mult * self.rx_interval_us

    def _jittered(self) -> float:
        """The next periodic gap in seconds (§6.8.7)."""
        high = 0.9 if self.detect_mult == 1 else 1.0
        return self.tx_interval_us * self.config.rng.uniform(0.75, high) / 1e6

    def _schedule_tx(self, now: float) -> None:
        if self.tx_interval_us == 0 or (self.config.passive and self.remote_discr == 0):
            self.deadlines.pop(Timer.TX, None)  # §6.8.7: nothing periodic
        else:
            self.deadlines[Timer.TX] = now + self._jittered()

    def _retime_tx(self, old_interval: int, now: float) -> None:
        """A shorter interval takes effect now rather than after the pending (longer) gap."""
        new = self.tx_interval_us
        pending = self.deadlines.get(Timer.TX)
        if new == 0 or pending is None or (new < old_interval and now + new / 1e6 < pending):
            self._schedule_tx(now)

    def _send(self, now: float, poll: bool = False, final: bool = False) -> None:
        """Queue one Control packet (§6.8.7); never Poll and Final together (§4.1)."""
        if self.config.passive and self.remote_discr == 0:
            return
        pkt = ControlPacket(
            state=self.state,
            detect_mult=self.detect_mult,
            my_discriminator=self.local_discr,
            your_discriminator=self.remote_discr,
            desired_min_tx=self._advertised_tx(),
            required_min_rx=self._cfg_rx,
            diag=self.local_diag,
            poll=poll and not final,
            final=final,
        )
        if self.config.auth is not None:
            self._xmit_seq = (self._xmit_seq + 1) & 0xFFFFFFFF
            pkt = bfd_auth.sign(pkt, self.config.auth, self._xmit_seq)
        self._out.append(pkt)
        self.packets_sent += 1

    # ------------------------------------------------------------------ status

    def status(self) -> BfdStatus:
        """A snapshot for operators and the lead's BGP coupling."""
        return BfdStatus(
            key=self.key,
            state=self.state,
            remote_state=self.remote_state,
            local_discr=self.local_discr,
            remote_discr=self.remote_discr,
            local_diag=self.local_diag,
            remote_diag=self.remote_diag,
            detect_mult=self.detect_mult,
            remote_detect_mult=self.remote_detect_mult,
            desired_min_tx_us=self._advertised_tx(),
            required_min_rx_us=self._cfg_rx,
            remote_desired_min_tx_us=self.remote_desired_tx,
            remote_min_rx_us=self.remote_min_rx,
            tx_interval_us=self.tx_interval_us,
            rx_interval_us=self.rx_interval_us,
            detection_time_us=self.detection_time_us,
            polling=self._poll is not None,
            flaps=self.flaps,
            last_down_diag=self.last_down_diag,
            packets_sent=self.packets_sent,
            packets_received=self.packets_received,
            dropped=tuple(sorted(self.dropped.items(), key=lambda kv: kv[0].name)),
            last_change=self.last_change,
        )

    def __repr__(self) -> str:
        return f"BfdSession({self.key}, {self.state}, discr {self.local_discr}/{self.remote_discr})"
