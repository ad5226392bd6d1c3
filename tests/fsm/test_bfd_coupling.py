"""BFD as a client of the sans-IO ``Peer`` (RFC 5882, RFC 9384): two Peers back to back in memory.

A BFD failure takes the session down at once with Cease/BFD Down and holds it Idle (no automatic
restart, the peer's connections refused, a ManualStart only remembered) until BFD is Up again; the
peer's routes are not kept as stale; a peer without BFD configured is not coupled; removing BFD from
the configuration lets the session come back; repeated BFD failures are damped like any other.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.fsm import (
    BfdSettings,
    CloseRequested,
    DownKind,
    GracefulRestartConfig,
    Peer,
    SessionDown,
    SessionUp,
    StaleRoutesKept,
    State,
    Timer,
)
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import IPV4_UNICAST, CeaseSubcode, ErrorCode, Notification, Prefix
from tests.fsm.test_peer import of, pair, received, up
from tests.fsm.wire_pair import Net

BFD = BfdSettings(min_rx_ms=100, min_tx_ms=100, multiplier=3)
BFD_DOWN_NOTE = Notification(ErrorCode.CEASE, CeaseSubcode.BFD_DOWN)
#: With the RFC 8538 N bit on both sides: a Hard Reset carrying Cease/BFD Down (RFC 8538 §3.1).
HARD_RESET_BFD = Notification(ErrorCode.CEASE, CeaseSubcode.HARD_RESET, b"\x06\x0a")
ROUTES = {Prefix.from_network(f"198.51.100.{i}/32"): RouteAttrs() for i in range(5)}
DETAIL = "control detection time expired"


def bfd_pair(**kw: object) -> tuple[Peer, Peer, Net]:
    return pair(families=(IPV4_UNICAST,), bfd=BFD, **kw)


def downs(net: Net, p: Peer) -> list[SessionDown]:
    return [e for e in of(net, p, SessionDown) if isinstance(e, SessionDown)]


def refused_connection_from_b(net: Net) -> None:
    """B's reconnection attempt reaches A, which refuses it (Idle, RFC 4271 §8.2.2)."""
    assert id(net.b) in net.wants_connect, "B should be trying to reconnect"
    closes_before = len(of(net, net.a, CloseRequested))
    net.connect(net.b)
    net.pump()
    assert len(of(net, net.a, CloseRequested)) > closes_before
    assert net.a.state is State.IDLE and not net.b.established


def test_bfd_failure_takes_the_session_down_with_cease_bfd_down_and_holds_it() -> None:
    a, b, net = bfd_pair(connect_retry_time=1.0)
    a.set_desired(ROUTES, 0.0)
    assert a.local_address is None
    up(net)
    assert (a.local_address, b.local_address) == ("192.0.2.1", "192.0.2.2")  # a multihop BFD source
    a.bfd_changed(True, net.now)
    assert received(b) == set(ROUTES)
    a.bfd_changed(False, net.now, DETAIL)
    net.pump()
    (down,) = downs(net, a)
    assert down.was_established and down.reason.kind is DownKind.BFD_DOWN
    assert down.reason.notification == HARD_RESET_BFD and down.reason.detail == DETAIL
    assert str(down.reason).startswith("BFD down")
    # The peer hears why (RFC 9384, in a Hard Reset: the N bit is on both sides) and keeps no stale routes.
    (theirs,) = downs(net, b)
    assert theirs.reason.kind is DownKind.NOTIFICATION_RECEIVED
    assert theirs.reason.notification == HARD_RESET_BFD
    assert received(b) == set() and of(net, b, StaleRoutesKept) == []
    assert a.status(net.now).notifications_sent == {"Cease / Hard Reset": 1}
    assert a.bfd_held and a.state is State.IDLE and a.get_timer() is None  # nothing will restart it
    # Held: time passes, B keeps trying, A refuses every connection and never tries itself.
    for _ in range(3):
        net.advance(10.0)
        refused_connection_from_b(net)
    assert id(a) not in net.wants_connect and len(of(net, a, SessionUp)) == 1
    # BFD Up: the idle hold time (1 s, jittered) and the session is back with its routes.
    a.bfd_changed(True, net.now)
    assert not a.bfd_held
    t = a.get_timer()
    assert t is not None and net.now + 0.75 <= t <= net.now + 1.0
    net.advance(1.0)
    net.connect(a)
    net.pump()
    assert a.established and b.established and received(b) == set(ROUTES)


def test_bfd_down_before_connecting_also_holds_and_manual_start_waits_for_bfd() -> None:
    a, _b, net = bfd_pair()
    a.start(net.now)
    assert a.state is State.CONNECT
    a.bfd_changed(False, net.now, DETAIL)
    net.collect()
    assert a.state is State.IDLE and a.get_timer() is None
    st = a.status(net.now)
    assert st.last_down is not None and st.last_down.startswith("BFD down")
    # An operator's stop and start while BFD is down: remembered, not acted on.
    net.advance(1.0)
    a.stop(net.now)
    a.start(net.now)
    net.collect()
    assert a.state is State.IDLE and a.get_timer() is None and a.session.admin_up
    a.bfd_changed(True, net.now)
    net.advance(1.0)
    assert a.state is State.CONNECT
    # Stopped while held and not started again: BFD Up alone does not start it.
    c, _d, net2 = bfd_pair()
    c.start(net2.now)
    c.bfd_changed(False, net2.now)
    c.stop(net2.now)
    c.bfd_changed(True, net2.now)
    net2.advance(300.0)
    assert c.state is State.IDLE and id(c) not in net2.wants_connect


def test_without_the_n_bit_a_plain_cease_bfd_down() -> None:
    a, b, net = bfd_pair(gr=GracefulRestartConfig(notification=False))
    up(net)
    a.bfd_changed(False, net.now, DETAIL)
    net.pump()
    assert [d.reason.notification for d in downs(net, a)] == [BFD_DOWN_NOTE]
    assert [d.reason.notification for d in downs(net, b)] == [BFD_DOWN_NOTE]


def test_a_plain_cease_bfd_down_received_despite_the_n_bit_keeps_no_stale_routes() -> None:
    """Some routers (FRR 8.4) send Cease/BFD Down without a Hard Reset: its meaning still holds."""
    for subcode, kept in ((CeaseSubcode.BFD_DOWN, False), (CeaseSubcode.OUT_OF_RESOURCES, True)):
        a, b, net = bfd_pair()
        a.set_desired(ROUTES, 0.0)
        up(net)
        a.stop(net.now, subcode=subcode)  # a Cease without Hard Reset, whatever the N bit says
        net.pump()
        assert bool(of(net, b, StaleRoutesKept)) is kept and (received(b) == set(ROUTES)) is kept


def test_a_peer_without_bfd_configured_is_not_coupled() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    up(net)
    a.bfd_changed(False, net.now, DETAIL)
    net.pump()
    assert a.established and b.established and not a.bfd_held and downs(net, a) == []


def test_removing_bfd_from_the_configuration_ends_the_hold() -> None:
    a, b, net = bfd_pair()
    up(net)
    a.bfd_changed(False, net.now, DETAIL)
    net.pump()
    assert a.state is State.IDLE
    a.set_config(replace(a.config, peer=replace(a.config.peer, bfd=None)), net.now)
    assert not a.bfd_held
    net.advance(1.0)
    net.connect(a)
    net.pump()
    assert a.established and b.established


def test_a_bfd_failure_keeps_no_stale_routes_while_a_tcp_failure_does() -> None:
    a, b, net = bfd_pair()
    a.set_desired(ROUTES, 0.0)
    up(net)
    # B is the graceful-restart helper of A. A TCP failure: A's routes stay, stale (RFC 4724 §4.2).
    conn_b = next(c for c, e in net.ends.items() if e.owner is b)
    b.connection_lost(conn_b, net.now, "reset")
    net.collect()
    assert received(b) == set(ROUTES) and of(net, b, StaleRoutesKept)
    a2, b2, net2 = bfd_pair()
    a2.set_desired(ROUTES, 0.0)
    up(net2)
    # B's BFD fails: forwarding to A is what failed, so its routes go at once.
    b2.bfd_changed(False, net2.now, DETAIL)
    net2.collect()
    assert received(b2) == set() and of(net2, b2, StaleRoutesKept) == []


def test_bfd_failure_ends_a_colliding_connection_too() -> None:
    a, b, net = bfd_pair()
    a.start(0.0)
    b.start(0.0)
    net.open(a)
    net.open(b)  # both attempts complete: each side has its own OpenSent session
    for conn, end in list(net.ends.items()):
        if not end.made:
            net.accept(conn)
    assert a._colliding is not None
    a.bfd_changed(False, net.now, DETAIL)
    net.pump()
    assert a._colliding is None and a.state is State.IDLE and not a._conns
    assert not b.established


def test_repeated_bfd_failures_are_damped() -> None:
    a, _b, net = bfd_pair(idle_hold_time=2.0, stable_time=60.0)
    up(net)
    waits = []
    for _ in range(3):
        a.bfd_changed(False, net.now, DETAIL)
        net.pump()
        a.bfd_changed(True, net.now)
        t = a.session.deadlines[Timer.IDLE_HOLD]
        waits.append(t - net.now)
        net.advance(t - net.now)
        net.connect(a)
        net.pump()
        assert a.established
    # DampPeerOscillations: 2 s, 4 s, 8 s (each jittered by 0.75..1).
    assert [1.5 <= waits[0] <= 2.0, 3.0 <= waits[1] <= 4.0, 6.0 <= waits[2] <= 8.0] == [True] * 3


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.floats(0.0, 30.0)), max_size=12))
def test_held_exactly_while_bfd_is_down(steps: list[tuple[bool, float]]) -> None:
    """Any sequence of BFD reports and pauses: never out of Idle while held; back up when BFD is Up."""
    a, b, net = bfd_pair(idle_hold_time=1.0, max_idle_hold_time=4.0)
    up(net)
    for bfd_up, pause in steps:
        a.bfd_changed(bfd_up, net.now, DETAIL)
        net.pump()
        assert a.bfd_held is not bfd_up
        net.advance(pause)
        for src in (b, a):
            if id(src) in net.wants_connect:
                net.connect(src)
                net.pump()
        if a.bfd_held:
            assert a.state is State.IDLE and not a.established and id(a) not in net.wants_connect
    a.bfd_changed(True, net.now)
    for _ in range(10):
        net.advance(5.0)
        for src in (a, b):
            if id(src) in net.wants_connect and not a.established:
                net.connect(src)
                net.pump()
    assert a.established and b.established
