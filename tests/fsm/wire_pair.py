"""Two sans-IO ``Peer``s joined by in-memory TCP connections, with a hand-driven clock.

The harness plays the network and both drivers: it turns ``ConnectRequested`` into connections when
told to (so a test chooses who connects first), holds each direction's bytes until delivered (so a test
chooses which OPEN arrives first), closes connections on ``CloseRequested`` after delivering their last
bytes, and fires timers. Nothing reads a clock and nothing sleeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import count

from bgpsvc.fsm import AnyPeerEvent, CloseRequested, ConnectRequested, Peer

_ids = count(1)


@dataclass
class End:
    """One end of a connection: its owner, the peer at the other end and the other end's id."""

    owner: Peer
    other: Peer
    other_conn: int
    local_address: str
    outbox: bytearray = field(default_factory=bytearray)
    closed: bool = False
    made: bool = False  # the owner was told (connection_made)


class Net:
    """The in-memory network between two peers."""

    def __init__(self, a: Peer, b: Peer, a_addr: str = "192.0.2.1", b_addr: str = "192.0.2.2") -> None:
        self.a, self.b = a, b
        self.addr = {id(a): a_addr, id(b): b_addr}
        self.now = 0.0
        self.ends: dict[int, End] = {}
        self.wants_connect: set[int] = set()  # id(peer) with a pending ConnectRequested
        self.events: dict[int, list[AnyPeerEvent]] = {id(a): [], id(b): []}
        self.wire_log: list[tuple[int, bytes]] = []  # (conn of the sender, bytes) as delivered

    def other(self, p: Peer) -> Peer:
        return self.b if p is self.a else self.a

    # -------------------------------------------------------------- moving things

    def collect(self) -> None:
        """Take every peer's events and queued bytes (no delivery)."""
        for p in (self.a, self.b):
            for conn, end in list(self.ends.items()):
                if end.owner is p and not end.closed:
                    end.outbox += p.data_to_send(conn)
            while (ev := p.next_event()) is not None:
                self.events[id(p)].append(ev)
                if isinstance(ev, ConnectRequested):
                    self.wants_connect.add(id(p))
                elif isinstance(ev, CloseRequested) and ev.conn is not None and ev.conn in self.ends:
                    end = self.ends[ev.conn]
                    end.outbox += p.data_to_send(ev.conn)
                    end.closed = True

    def open(self, src: Peer) -> tuple[int, int]:
        """``src``'s connection attempt succeeds at its end only (SYN-ACK received); returns
        (src's conn, the other side's conn). The other side learns of it with ``accept``."""
        self.collect()
        assert id(src) in self.wants_connect, "no connection attempt pending"
        self.wants_connect.discard(id(src))
        dst = self.other(src)
        c_src, c_dst = next(_ids), next(_ids)
        self.ends[c_src] = End(src, dst, c_dst, self.addr[id(src)], made=True)
        self.ends[c_dst] = End(dst, src, c_src, self.addr[id(dst)])
        src.connection_made(c_src, self.now, outgoing=True, local_address=self.addr[id(src)])
        self.collect()
        return c_src, c_dst

    def accept(self, conn: int) -> None:
        """The listening side of ``conn`` accepts it."""
        end = self.ends[conn]
        end.made = True
        end.owner.connection_made(conn, self.now, outgoing=False, local_address=end.local_address)
        self.collect()

    def connect(self, src: Peer) -> tuple[int, int]:
        """``open`` and ``accept`` at once."""
        c_src, c_dst = self.open(src)
        self.accept(c_dst)
        return c_src, c_dst

    def deliver(self, conn: int) -> bool:
        """Deliver what ``conn``'s owner wrote (and the close that follows); True if anything moved."""
        self.collect()
        end = self.ends.get(conn)
        if end is None or not end.made:
            return False
        if end.other_conn in self.ends and not self.ends[end.other_conn].made:
            return False  # bytes wait in the listener's queue until it accepts
        moved = False
        data = bytes(end.outbox)
        end.outbox.clear()
        if data:
            self.wire_log.append((conn, data))
            end.other.receive_data(end.other_conn, data, self.now)
            moved = True
        if end.closed:
            del self.ends[conn]
            peer_end = self.ends.get(end.other_conn)
            if peer_end is not None and not peer_end.closed:
                end.other.connection_lost(end.other_conn, self.now, "closed by peer")
                del self.ends[end.other_conn]
            moved = True
        self.collect()
        return moved

    def pump(self, limit: int = 10_000) -> None:
        """Deliver everything, both ways, until nothing moves."""
        for _ in range(limit):
            self.collect()
            if not any(self.deliver(c) for c in list(self.ends)):
                return
        raise AssertionError("the network did not settle")

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every timer that falls due on the way (in order), delivering after each."""
        end = self.now + seconds
        while True:
            due = [t for t in (self.a.get_timer(), self.b.get_timer()) if t is not None and t <= end]
            if not due:
                break
            self.now = max(self.now, min(due))
            for p in (self.a, self.b):
                t = p.get_timer()
                if t is not None and t <= self.now:
                    p.handle_timer(self.now)
            self.pump()
        self.now = end

    def tick(self, seconds: float) -> None:
        """Move the clock, then let each peer handle its due timers once (one loop turn), and deliver."""
        self.now += seconds
        for p in (self.a, self.b):
            t = p.get_timer()
            if t is not None and t <= self.now:
                p.handle_timer(self.now)
        self.pump()

    def restart_a(self, new: Peer) -> None:
        """A's process is replaced by ``new`` (what was left of A's connections vanishes silently, as
        after a crash; the other side notices only through its own timers or a new connection)."""
        old = self.a
        for conn, end in list(self.ends.items()):
            if end.owner is old:
                del self.ends[conn]
        self.addr[id(new)] = self.addr.pop(id(old))
        self.events[id(new)] = []
        self.wants_connect.discard(id(old))
        self.a = new

    def connections(self) -> int:
        """Open connections (pairs)."""
        return len(self.ends) // 2
