"""The sans-IO ``Peer``: two of them back to back in memory (tests/fsm/wire_pair.py), no clock, no socket.

Collisions in every ordering, graceful restart as restarting speaker and as helper, the stale timer,
a large first table streamed in chunks with keepalives in between, next hops, route refresh.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from dataclasses import replace

import pytest

from bgpsvc.fsm import (
    STREAM_CHUNK,
    CloseRequested,
    ConnectionFailed,
    EndOfRibReceived,
    EndOfRibSent,
    GracefulRestartConfig,
    Peer,
    PeerTimer,
    SessionConfig,
    SessionDown,
    SessionUp,
    StaleRoutesFlushed,
    StaleRoutesKept,
    State,
    keep_existing,
)
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    Communities,
    Keepalive,
    MpReachNlri,
    NextHop,
    Notification,
    Prefix,
    RouteRefresh,
    Update,
    split_messages,
)
from tests.fsm.wire_pair import Net

GR = GracefulRestartConfig(restart_time=120)


def peer(
    local_as: int,
    peer_as: int,
    rid: str,
    address: str,
    *,
    gr: GracefulRestartConfig | None = GR,
    **kw: object,
) -> Peer:
    hold = kw.pop("hold_initial", False)
    cfg = SessionConfig.build(
        local_as,
        peer_as,
        rid,
        address=address,
        graceful_restart=gr,
        rng=random.Random(3),
        **kw,  # type: ignore[arg-type]
    )
    return Peer(cfg, hold_initial=bool(hold))


def pair(a_id: str = "192.0.2.1", b_id: str = "192.0.2.2", **kw: object) -> tuple[Peer, Peer, Net]:
    a = peer(64512, 64513, a_id, "192.0.2.2", **kw)
    b = peer(64513, 64512, b_id, "192.0.2.1", store_routes=True, **kw)
    return a, b, Net(a, b)


def up(net: Net) -> None:
    """A connects, B accepts; both Established."""
    net.a.start(net.now)
    net.b.start(net.now)
    net.connect(net.a)
    net.pump()
    assert net.a.established and net.b.established


def of(net: Net, p: Peer, kind: type) -> list[object]:
    return [e for e in net.events[id(p)] if isinstance(e, kind)]


def received(p: Peer) -> set[Prefix]:
    assert p.rib_in is not None
    return {prefix for table in p.rib_in.routes.values() for prefix in table}


ROUTES = {Prefix.from_network(f"198.51.100.{i}/32"): RouteAttrs() for i in range(10)}


# ------------------------------------------------------------------------------------ basics


def test_routes_flow_with_the_session_address_as_next_hop_and_end_of_rib() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(ROUTES, 0.0)
    up(net)
    assert received(b) == set(ROUTES)
    assert b.rib_in is not None
    route = next(iter(b.rib_in.routes[IPV4_UNICAST].values()))
    assert NextHop(ipaddress.IPv4Address("192.0.2.1")) in route.attributes
    assert [e.prefixes for e in of(net, a, EndOfRibSent)] == [10]  # type: ignore[attr-defined]
    assert of(net, b, EndOfRibReceived) == [EndOfRibReceived(IPV4_UNICAST, 0)]
    a.set_desired({}, net.now)
    net.pump()
    assert received(b) == set()
    st = a.status(net.now)
    assert st.state == "Established" and st.prefixes_sent == 0 and st.uptime == 0.0


def test_configured_next_hop_wins_and_a_change_is_re_advertised_without_a_reset() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,), next_hop_v4="203.0.113.9")
    a.set_desired(ROUTES, 0.0)
    up(net)
    assert b.rib_in is not None
    hop = lambda: next(iter(b.rib_in.routes[IPV4_UNICAST].values())).attributes  # noqa: E731
    assert NextHop(ipaddress.IPv4Address("203.0.113.9")) in hop()
    a.set_config(replace(a.config, peer=replace(a.config.peer, next_hop_v4="203.0.113.10")), net.now)
    net.pump()
    assert NextHop(ipaddress.IPv4Address("203.0.113.10")) in hop()
    assert of(net, a, SessionDown) == [] and a.established


def test_ipv6_routes_over_an_ipv4_session_get_a_mapped_next_hop() -> None:
    a, b, net = pair()
    a.set_desired({Prefix.from_network("2001:db8:1::/48"): RouteAttrs()}, 0.0)
    up(net)
    assert b.rib_in is not None
    (route,) = b.rib_in.routes[IPV6_UNICAST].values()
    (mp,) = [x for x in route.attributes if isinstance(x, MpReachNlri)]
    assert mp.next_hop == (ipaddress.IPv6Address("::ffff:192.0.2.1"),)


def test_idle_refuses_and_established_refuses_a_second_connection() -> None:
    a, b, net = pair()
    a.start(0.0)
    net.connect(a)  # B was never started: Idle refuses (RFC 4271 §8.2.2)
    net.pump()
    closes = of(net, b, CloseRequested)
    assert closes and "Idle" in closes[0].reason  # type: ignore[attr-defined]
    assert b.state is State.IDLE
    a2, b2, net2 = pair()
    up(net2)
    b2.connection_made(999, net2.now, outgoing=False, local_address="192.0.2.2")
    assert any(isinstance(e, CloseRequested) and e.conn == 999 for e in iter(b2.next_event, None))
    assert b2.established and a2.established


def test_a_failed_attempt_is_reported_and_retried() -> None:
    a, _b, net = pair(connect_retry_time=5.0)
    a.start(0.0)
    net.collect()
    a.connect_failed(0.0, "Connection refused")
    net.collect()
    assert of(net, a, ConnectionFailed) == [ConnectionFailed("Connection refused")]
    assert a.state is State.ACTIVE
    t = a.get_timer()
    assert t is not None and 3.75 <= t <= 5.0
    net.advance(5.0)
    assert a.state is State.CONNECT and id(a) in net.wants_connect


def test_hold_initial_keeps_the_first_table_and_end_of_rib_until_released() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,), hold_initial=True)
    a.set_desired(ROUTES, 0.0)
    up(net)
    assert received(b) == set() and of(net, b, EndOfRibReceived) == []
    a.release_initial(net.now)
    net.pump()
    assert received(b) == set(ROUTES)
    assert of(net, b, EndOfRibReceived) == [EndOfRibReceived(IPV4_UNICAST, 0)]


def test_route_refresh_is_answered_with_borr_table_eorr() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(ROUTES, 0.0)
    up(net)
    b.session.send_route_refresh(IPV4_UNICAST, net.now)
    net.collect()
    before = len(net.wire_log)
    net.pump()
    a_conns = {c for c, e in net.ends.items() if e.owner is a}
    msgs = [m for conn, data in net.wire_log[before:] if conn in a_conns for m in split_messages(data)]
    from_a = [m for m in msgs if not isinstance(m, Keepalive)]
    assert isinstance(from_a[0], RouteRefresh) and from_a[0].subtype == 1  # BoRR (RFC 7313 §4)
    assert isinstance(from_a[-1], RouteRefresh) and from_a[-1].subtype == 2  # EoRR
    announced = {p for m in from_a if isinstance(m, Update) for _, p in m.announced()}
    assert announced == set(ROUTES)


def test_stop_sends_an_rfc9003_cease_and_the_other_side_goes_down() -> None:
    a, b, net = pair()
    up(net)
    a.stop(net.now, "maintenance")
    net.pump()
    (down,) = of(net, b, SessionDown)
    assert down.reason.notification is not None  # type: ignore[attr-defined]
    assert down.reason.notification.shutdown_message == "maintenance"  # type: ignore[attr-defined]
    assert net.connections() == 0 and a.state is State.IDLE


# ------------------------------------------------------------------------------------ collisions


def test_keep_existing_is_rfc4271_section_6_8() -> None:
    hi, lo = ipaddress.IPv4Address("192.0.2.9"), ipaddress.IPv4Address("192.0.2.1")
    assert keep_existing(hi, lo, existing_outgoing=True)
    assert not keep_existing(lo, hi, existing_outgoing=True)
    assert not keep_existing(hi, lo, existing_outgoing=False)
    assert keep_existing(hi, hi, existing_outgoing=True, local_as=65002, remote_as=65001)  # RFC 6286 §2.3
    assert not keep_existing(hi, hi, existing_outgoing=True, local_as=65001, remote_as=65002)


CHANNELS = ("a-out", "a-out-reply", "b-out", "b-out-reply")


@pytest.mark.parametrize("a_higher", [True, False], ids=["A-higher-id", "B-higher-id"])
@pytest.mark.parametrize("a_accepts_first", [True, False], ids=["A-accepts-first", "B-accepts-first"])
@pytest.mark.parametrize("order", list(itertools.permutations(CHANNELS)), ids="/".join)
def test_simultaneous_open_leaves_one_session_on_the_higher_ids_connection(
    a_higher: bool, a_accepts_first: bool, order: tuple[str, ...]
) -> None:
    ids = ("192.0.2.9", "192.0.2.1") if a_higher else ("192.0.2.1", "192.0.2.9")
    a, b, net = pair(*ids, families=(IPV4_UNICAST,))
    a.set_desired(ROUTES, 0.0)
    a.start(0.0)
    b.start(0.0)
    a_out, b_in = net.open(a)  # both connect at the same moment: each end sees its own first
    b_out, a_in = net.open(b)
    for conn in (a_in, b_in) if a_accepts_first else (b_in, a_in):
        net.accept(conn)
    # Deliver the first message on each channel in the chosen order, then everything.
    channel = {"a-out": a_out, "a-out-reply": b_in, "b-out": b_out, "b-out-reply": a_in}
    for name in order:
        net.deliver(channel[name])
    net.pump()
    assert a.established and b.established
    assert net.connections() == 1
    survivor = a_out if a_higher else b_out  # the connection initiated by the higher BGP Identifier
    assert survivor in net.ends
    assert len(of(net, a, SessionUp)) == 1 and len(of(net, b, SessionUp)) == 1
    assert not [d for p in (a, b) for d in of(net, p, SessionDown) if d.was_established]  # type: ignore[attr-defined]
    sent = [m for _, data in net.wire_log for m in split_messages(data)]
    assert Notification(6, 7) in sent  # Cease / Connection Collision Resolution on the loser
    assert received(b) == set(ROUTES)
    # The survivor is a full peering: it keeps working and restarts actively after a failure.
    a.stop(net.now, "bye")
    net.pump()
    assert b.state is State.IDLE
    net.advance(5.0)
    assert b.state in (State.CONNECT, State.ACTIVE) and not b.session.config.peer.passive


def test_a_second_incoming_connection_while_opensent_from_our_own_accept_replaces_the_stale_one() -> None:
    # B accepted A's connection in Active (so its connection is incoming) and A, restarted, connects again.
    a, b, net = pair(families=(IPV4_UNICAST,), passive=False)
    b.start(0.0)
    a.start(0.0)
    first_a, first_b = net.connect(a)
    net.deliver(first_a)  # B has A's OPEN... but A never gets B's reply: A restarts
    assert b.state is State.OPENCONFIRM
    a2 = peer(64512, 64513, "192.0.2.1", "192.0.2.2", families=(IPV4_UNICAST,))
    net.restart_a(a2)
    a2.start(net.now)
    net.connect(a2)
    net.pump()
    assert b.established and a2.established
    assert first_b not in net.ends and net.connections() == 1


# ------------------------------------------------------------------------------------ graceful restart


def test_helper_keeps_stale_routes_until_end_of_rib_after_a_restart() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(ROUTES, 0.0)
    up(net)
    a.restart_exit(net.now)  # no NOTIFICATION: the connection just goes
    net.pump()
    assert of(net, b, StaleRoutesKept) == [StaleRoutesKept(10, 120)]
    assert received(b) == set(ROUTES)
    assert b.status(net.now).stale_routes == 10
    # A comes back restarting (Restart State bit), with 6 of the 10 routes: the 4 others go at End-of-RIB.
    a2 = peer(
        64512, 64513, "192.0.2.1", "192.0.2.2", gr=replace(GR, restarting=True), families=(IPV4_UNICAST,)
    )
    net.restart_a(a2)
    kept = dict(list(ROUTES.items())[:6])
    a2.set_desired(kept, net.now)
    a2.start(net.now)
    net.advance(3.0)  # B restarts after its idle hold time
    net.connect(a2)
    net.pump()
    assert b.session.params is not None and b.session.params.peer_graceful_restart is not None
    assert b.session.params.peer_graceful_restart.restarting
    assert received(b) == set(kept)
    assert of(net, b, EndOfRibReceived)[-1] == EndOfRibReceived(IPV4_UNICAST, 4)
    assert a2.config.graceful_restart is not None and not a2.config.graceful_restart.restarting


def test_stale_routes_go_when_the_restart_time_passes() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(ROUTES, 0.0)
    up(net)
    t0 = net.now
    a.restart_exit(net.now)
    net.pump()
    assert b.deadlines[PeerTimer.RESTART] == t0 + 120
    net.advance(119.0)
    assert received(b) == set(ROUTES)
    net.advance(1.0)
    assert received(b) == set()
    assert of(net, b, StaleRoutesFlushed) == [StaleRoutesFlushed(10, "restart time over")]


def test_a_peer_back_without_graceful_restart_loses_its_stale_routes_at_once() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(ROUTES, 0.0)
    up(net)
    a.restart_exit(net.now)
    net.pump()
    a2 = peer(64512, 64513, "192.0.2.1", "192.0.2.2", gr=None, families=(IPV4_UNICAST,))
    net.restart_a(a2)
    a2.start(net.now)
    net.advance(3.0)
    net.connect(a2)
    net.pump()
    flushed = of(net, b, StaleRoutesFlushed)
    assert flushed and flushed[0] == StaleRoutesFlushed(10, "peer back without graceful restart")
    assert PeerTimer.RESTART not in b.deadlines


def test_a_notification_with_the_n_bit_keeps_routes_but_hard_reset_does_not() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(ROUTES, 0.0)
    up(net)
    a.stop(net.now, "soft")  # Cease/Administrative Shutdown: both sides sent N (RFC 8538 §3)
    net.pump()
    assert of(net, b, StaleRoutesKept) == [StaleRoutesKept(10, 120)]
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(ROUTES, 0.0)
    up(net)
    a.stop(net.now, "", subcode=9)  # Hard Reset
    net.pump()
    assert of(net, b, StaleRoutesKept) == [] and received(b) == set()


# ------------------------------------------------------------------------------------ streaming


def test_a_300k_route_first_table_streams_in_chunks_with_keepalives_between() -> None:
    n = 300_000
    table = {Prefix(1, 32, (0x0A000000 + i).to_bytes(4, "big")): RouteAttrs() for i in range(n)}
    a, b, net = pair(families=(IPV4_UNICAST,), hold_time=9, max_prefixes=None)
    a.set_desired(table, 0.0)
    a.start(0.0)
    b.start(0.0)
    net.connect(a)
    net.pump()
    assert a.established and a.streaming
    steps = 0
    received_before = a.session.messages_received
    while a.streaming:
        assert a.deadlines.get(PeerTimer.STREAM) == net.now  # the next chunk is due at once
        net.tick(0.5)  # one chunk per loop turn; each "takes" half a second
        steps += 1
    assert steps == n // STREAM_CHUNK + 1
    # The stream took 30 s against a 9 s hold time: B's KEEPALIVEs were read and A's hold timer restarted
    # between chunks; A's UPDATEs restarted B's (RFC 4271 §10). Nobody waited for the table to finish.
    assert net.now > 3 * 9 and a.established and b.established
    assert a.session.messages_received - received_before >= net.now / 3 - 1
    assert a.tally.flaps == 0 and b.tally.flaps == 0
    assert b.established and len(received(b)) == n
    assert of(net, b, EndOfRibReceived) == [EndOfRibReceived(IPV4_UNICAST, 0)]


def test_streaming_pauses_while_the_transport_is_full_and_catches_up_with_changes() -> None:
    n = 3 * STREAM_CHUNK
    table = {Prefix(1, 32, (0x0A000000 + i).to_bytes(4, "big")): RouteAttrs() for i in range(n)}
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(table, 0.0)
    a.start(0.0)
    b.start(0.0)
    a_conn, _ = net.connect(a)
    net.pump()
    a.handle_timer(net.now)  # one chunk
    a.pause_writing(a_conn)
    assert PeerTimer.STREAM not in a.deadlines and a.streaming
    changed = dict(table)
    extra = Prefix.from_network("203.0.113.0/24")
    changed[extra] = RouteAttrs(med=5)
    a.set_desired(changed, net.now)  # arrives mid-stream: applied when the stream ends
    a.resume_writing(a_conn, net.now)
    assert a.deadlines[PeerTimer.STREAM] == net.now
    while a.streaming:
        net.tick(0.1)
    assert received(b) == set(changed)


def test_the_session_going_down_mid_stream_stops_the_stream() -> None:
    n = 3 * STREAM_CHUNK
    table = {Prefix(1, 32, (0x0A000000 + i).to_bytes(4, "big")): RouteAttrs() for i in range(n)}
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.set_desired(table, 0.0)
    up(net)
    assert a.streaming
    b.stop(net.now, "bye")
    net.pump()
    assert not a.streaming and PeerTimer.STREAM not in a.deadlines and a.rib_out is None


# ------------------------------------------------------------------------------------ odds and ends


def test_graceful_shutdown_withdraw_all_and_status_by_class() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,), name="tor-1")
    a.set_desired(ROUTES, 0.0)
    up(net)
    a.set_graceful_shutdown(True, net.now)  # RFC 8326: re-advertised with GRACEFUL_SHUTDOWN
    net.pump()
    assert b.rib_in is not None
    route = next(iter(b.rib_in.routes[IPV4_UNICAST].values()))
    (comms,) = [x for x in route.attributes if isinstance(x, Communities)]
    assert 0xFFFF0000 in comms.values
    st = a.status(net.now, classify=lambda p: "even" if p.packed[-1] % 2 == 0 else "odd")
    assert st.prefixes_by_class == {"even": 5, "odd": 5} and st.graceful_shutdown
    a.withdraw_all(net.now)
    net.pump()
    assert received(b) == set() and a.prefixes_sent == 0


def test_stop_during_a_collision_ends_both_connections() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.start(0.0)
    b.start(0.0)
    _a_out, b_in = net.open(a)
    _b_out, a_in = net.open(b)
    net.accept(b_in)
    net.accept(a_in)
    assert a._colliding is not None
    a.stop(net.now, "bye")
    net.pump()
    assert net.connections() == 0 and a.state is State.IDLE
    assert a.get_timer() is None


def test_the_colliding_connection_carries_on_when_the_first_one_breaks() -> None:
    a, b, net = pair(families=(IPV4_UNICAST,))
    a.start(0.0)
    b.start(0.0)
    a_out, b_in = net.open(a)
    _b_out, a_in = net.open(b)
    net.accept(b_in)
    net.accept(a_in)
    a.connection_lost(a_out, net.now, "reset")  # A's own connection breaks before any OPEN arrived
    b.connection_lost(b_in, net.now, "reset")
    del net.ends[a_out], net.ends[b_in]
    net.pump()
    assert a.established and b.established and net.connections() == 1


def test_looped_routes_are_not_stored_and_a_session_over_ipv6_uses_its_address() -> None:
    a = peer(64512, 64513, "192.0.2.1", "2001:db8::2", families=(IPV6_UNICAST,))
    b = peer(64513, 64512, "192.0.2.2", "2001:db8::1", families=(IPV6_UNICAST,), store_routes=True)
    net = Net(a, b, "2001:db8::1", "2001:db8::2")
    p6 = Prefix.from_network("2001:db8:5::/48")
    a.set_desired({p6: RouteAttrs()}, 0.0)
    up(net)
    assert b.rib_in is not None
    (route,) = b.rib_in.routes[IPV6_UNICAST].values()
    (mp,) = [x for x in route.attributes if isinstance(x, MpReachNlri)]
    assert mp.next_hop == (ipaddress.IPv6Address("2001:db8::1"),)
    a.set_desired({p6: RouteAttrs(as_path=(64513,))}, net.now)  # B's own AS: a loop at B
    net.pump()
    assert received(b) == set()


def test_graceful_restart_keeps_only_the_families_the_peer_preserves() -> None:
    a, b, net = pair()
    a.set_desired({**ROUTES, Prefix.from_network("2001:db8:1::/48"): RouteAttrs()}, 0.0)
    up(net)
    assert b.session.params is not None and b.session.params.peer_graceful_restart is not None
    b._peer_gr = replace(  # the peer's capability named IPv4 only
        b.session.params.peer_graceful_restart,
        families=b.session.params.peer_graceful_restart.families[:1],
    )
    a.restart_exit(net.now)
    net.pump()
    assert received(b) == set(ROUTES)
