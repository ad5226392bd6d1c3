"""Many BFD sessions behind one receive path: the sans-IO demultiplexer (RFC 5880 §6.3, RFC 5881 §3,
RFC 5883 §4).

A received datagram goes to the session its Your Discriminator names; when that is 0 (only allowed in
Down / AdminDown), to the session configured for (peer address, local address, multihop), a session
with no local address matching any. A selected session must also match the datagram's source address
and hop mode, so a forged discriminator from elsewhere is dropped. What fits no session is dropped and
counted in ``dropped``; sessions count their own drops (TTL, authentication).

After every input the endpoint collects the sessions it touched: their packets go to
``datagrams_to_send()`` as ``(key, bytes)`` and their events to ``next_event()``; ``get_timer()`` is the
earliest deadline of all sessions, kept in a heap so that a timer touches only the sessions that are due.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter, deque

from .config import BfdConfig, SessionKey
from .events import BfdEvent, BfdStatus
from .packet import ControlPacket, DropReason, decode_control, encode_control
from .session import BfdSession


class BfdEndpoint:
    """Owns the sessions of one system and routes datagrams to them (RFC 5881 §3, RFC 5883 §4)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()
        self.sessions: dict[SessionKey, BfdSession] = {}
        self._by_discr: dict[int, BfdSession] = {}
        self._by_addr: dict[tuple[str, str | None, bool], BfdSession] = {}
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, float] = {}  # discr -> the deadline its live heap entry carries
        self._out: list[tuple[SessionKey, bytes]] = []
        self._events: deque[BfdEvent] = deque()
        self.dropped: Counter[DropReason] = Counter()

    # ------------------------------------------------------------------ sessions

    def add_session(self, config: BfdConfig, now: float) -> BfdSession:
        """Create a session with a fresh random discriminator (RFC 5880 §6.8.1); it starts in Down."""
        key = config.key
        if key in self.sessions:
            raise ValueError(f"bfd: a session for {key} exists already")
        discr = 0
        while discr == 0 or discr in self._by_discr:
            discr = self._rng.getrandbits(32)
        session = BfdSession(config, discr, now)
        self.sessions[key] = session
        self._by_discr[discr] = session
        self._by_addr[key.peer, key.local, key.multihop] = session
        self._collect(session)
        return session

    def remove_session(self, key: SessionKey, now: float) -> None:
        """Send one AdminDown (so the peer sees no failure, RFC 5882 §3.2) and forget the session."""
        session = self.sessions.pop(key)
        session.admin_down(now)
        self._collect(session)
        del self._by_discr[session.local_discr]
        del self._by_addr[key.peer, key.local, key.multihop]
        self._armed.pop(session.local_discr, None)

    def admin_down(self, key: SessionKey, now: float) -> None:
        """See :meth:`BfdSession.admin_down`."""
        self.sessions[key].admin_down(now)
        self._collect(self.sessions[key])

    def enable(self, key: SessionKey, now: float) -> None:
        """See :meth:`BfdSession.enable`."""
        self.sessions[key].enable(now)
        self._collect(self.sessions[key])

    def set_timers(
        self,
        key: SessionKey,
        now: float,
        desired_min_tx_us: int | None = None,
        required_min_rx_us: int | None = None,
        detect_mult: int | None = None,
    ) -> None:
        """See :meth:`BfdSession.set_timers`."""
        session = self.sessions[key]
        session.set_timers(now, desired_min_tx_us, required_min_rx_us, detect_mult)
        self._collect(session)

    def dropped_total(self) -> Counter[DropReason]:
        """Drops here (malformed, no session, spoofed) plus every session's own (TTL, auth, ...)."""
        total = Counter(self.dropped)
        for session in self.sessions.values():
            total.update(session.dropped)
        return total

    def status(self, key: SessionKey) -> BfdStatus:
        """One session's :class:`BfdStatus`."""
        return self.sessions[key].status()

    # ------------------------------------------------------------------ inputs

    def receive_datagram(
        self,
        data: bytes,
        now: float,
        *,
        peer: str,
        local: str | None = None,
        multihop: bool = False,
        ttl: int | None = None,
    ) -> BfdSession | None:
        """Route one datagram from ``peer`` to ``local`` (port 4784 iff ``multihop``); ``ttl`` as received.

        Returns the session it went to (which may still have dropped it), or None when dropped here.
        """
        pkt = decode_control(data)
        if isinstance(pkt, DropReason):
            self.dropped[pkt] += 1
            return None
        session = self._select(pkt, peer, local, multihop)
        if isinstance(session, DropReason):
            self.dropped[session] += 1
            return None
        # Authentication is computed over the octets as received; otherwise the decoded packet will do.
        session.receive_packet(data if session.config.auth is not None else pkt, now, ttl)
        self._collect(session)
        return session

    def _select(
        self, pkt: ControlPacket, peer: str, local: str | None, multihop: bool
    ) -> BfdSession | DropReason:
        if pkt.your_discriminator:
            session = self._by_discr.get(pkt.your_discriminator)
            if session is None:
                return DropReason.NO_SESSION
            if session.key.peer != peer or session.key.multihop != multihop:
                return DropReason.ADDRESS_MISMATCH
            return session
        found = self._by_addr.get((peer, local, multihop)) or self._by_addr.get((peer, None, multihop))
        return found if found is not None else DropReason.NO_SESSION

    def handle_timer(self, now: float) -> None:
        """Run the timers of every session that is due."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, discr = heapq.heappop(heap)
            if self._armed.get(discr) != deadline:
                continue  # superseded entry, or the session is gone
            del self._armed[discr]
            session = self._by_discr[discr]
            session.handle_timer(now)
            self._collect(session)

    # ------------------------------------------------------------------ outputs

    def datagrams_to_send(self) -> tuple[tuple[SessionKey, bytes], ...]:
        """``(session key, datagram)`` pairs queued since the last call, in order."""
        out = tuple(self._out)
        self._out.clear()
        return out

    def next_event(self) -> BfdEvent | None:
        """The next state change of any session, or None."""
        return self._events.popleft() if self._events else None

    def get_timer(self) -> float | None:
        """The earliest deadline of any session, or None."""
        heap = self._heap
        while heap and self._armed.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def _collect(self, session: BfdSession) -> None:
        for pkt in session.packets_to_send():
            self._out.append((session.key, encode_control(pkt)))
        while (event := session.next_event()) is not None:
            self._events.append(event)
        deadline = session.get_timer()
        discr = session.local_discr
        if deadline is None:
            self._armed.pop(discr, None)
        elif self._armed.get(discr) != deadline and discr in self._by_discr:
            self._armed[discr] = deadline
            heapq.heappush(self._heap, (deadline, discr))
