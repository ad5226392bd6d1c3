"""The advertising half of a ``Peer``: the first table (held, streamed in chunks, End-of-RIB), every
change after it as a delta of the Adj-RIB-Out, next hops, graceful shutdown and ROUTE-REFRESH answers.

RFC 4271 §9.2 leaves pacing to the speaker: a first table larger than ``STREAM_CHUNK`` prefixes goes out
one chunk per timer step (a ``PeerTimer.STREAM`` deadline at ``now``), so the driver writes, reads and
sends keepalives between chunks, and stops while the transport's buffer is full (``Conn.paused``).
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from itertools import islice

from ..rib import AdjRibOut, Export, RouteAttrs
from ..wire import Family, Prefix
from .config import SessionConfig
from .events import AnyPeerEvent, EndOfRibSent, RouteRefreshRequested
from .inputs import PeerTimer
from .session import Session

#: Prefixes per step when streaming a first table: ~25-40 kB of UPDATEs, a few ms of work per step.
STREAM_CHUNK = 5000


@dataclass(slots=True)
class Conn:
    """One TCP connection of a peer, as the driver named it."""

    session: Session
    outgoing: bool
    local_address: str | None
    paused: bool = False


@dataclass(slots=True)
class _Stream:
    """A first table on its way out in chunks: an iterator over the desired set (never copied; the set
    is replaced, not changed, while it streams, so the iterator stays valid)."""

    rib: AdjRibOut
    items: Iterator[tuple[Prefix, RouteAttrs]]
    desired: Mapping[Prefix, RouteAttrs]
    families: tuple[Family, ...]
    #: The Adj-RIB-Out was empty when the stream began: the chunks (distinct keys of one mapping)
    #: are all unsent, and only the stream commits until it ends.
    unsent: bool = False


class Advertising:
    """What we send one peer (mixed into ``Peer``)."""

    config: SessionConfig
    session: Session
    rib_out: AdjRibOut | None
    deadlines: dict[PeerTimer, float]
    graceful_shutdown: bool
    _conns: dict[int, Conn]
    _primary: int | None
    _events: deque[AnyPeerEvent]
    _desired: Mapping[Prefix, RouteAttrs]
    _hold_initial: bool
    _initial_pending: bool
    _stream: _Stream | None
    _push_pending: bool

    @property
    def prefixes_sent(self) -> int:
        """Prefixes the peer currently has from us."""
        return len(self.rib_out.sent) if self.rib_out is not None else 0

    @property
    def streaming(self) -> bool:
        """A first table is still going out in chunks."""
        return self._stream is not None

    def set_desired(
        self, desired: Mapping[Prefix, RouteAttrs], now: float, changed: AbstractSet[Prefix] | None = None
    ) -> None:
        """The whole desired set (kept by reference, not copied); the peer gets the difference.

        ``changed``: the only prefixes in which ``desired`` differs from the set given last time (None:
        any); the Adj-RIB-Out then compares just those when it holds exactly the last set."""
        since, self._desired = self._desired, desired
        self._push(now, changed=changed, since=since)

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

    def _refresh(self, ev: RouteRefreshRequested, now: float) -> None:
        params = self.session.params
        if ev.subtype != 0 or self.rib_out is None or params is None:
            return
        self._send(self.rib_out.refresh(ev.family, params.enhanced_route_refresh), now)

    def _send(self, msgs: list[bytes], now: float) -> None:
        if msgs:
            self.session.send_updates(msgs, now)

    def _push(
        self,
        now: float,
        initial: bool = False,
        changed: AbstractSet[Prefix] | None = None,
        since: Mapping[Prefix, RouteAttrs] | None = None,
    ) -> None:
        """Bring the peer to the desired set (the first time: stream it, then End-of-RIB)."""
        rib, params = self.rib_out, self.session.params
        if rib is None or params is None or not self.session.established or self._initial_pending:
            return
        if self._stream is not None:
            self._push_pending = True  # picked up when the first table has gone out
            return
        desired = self._desired
        if initial and len(desired) > STREAM_CHUNK:
            self._stream = _Stream(rib, iter(desired.items()), desired, params.families, not rib.sent)
            self._schedule_stream(now)
            return
        msgs = rib.update(desired, params.families, changed=changed, since=since)
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
        chunk = dict(islice(st.items, STREAM_CHUNK))
        if chunk:
            delta = st.rib.announce_delta(chunk, st.families, unsent=st.unsent)
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
