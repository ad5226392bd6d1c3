"""Session FSM: two sessions through memory, timers driven by explicit ``now`` (RFC 4271 §8)."""

from __future__ import annotations

import ipaddress
import random
from dataclasses import replace

import pytest

from bgpsvc.fsm import (
    CloseRequested,
    ConnectRequested,
    DownKind,
    GracefulRestartConfig,
    MaxPrefixExceeded,
    RouteRefreshRequested,
    Session,
    SessionConfig,
    SessionDown,
    SessionEvent,
    SessionUp,
    State,
    Timer,
    UpdateReceived,
)
from bgpsvc.wire import (
    INTERN_STORED,
    INTERN_STREAMED,
    IPV4_UNICAST,
    IPV6_UNICAST,
    AsPath,
    Keepalive,
    NextHop,
    Notification,
    Open,
    Origin,
    Prefix,
    RouteRefresh,
    decode,
    encode,
    pack_updates,
    pack_withdrawals,
    split_messages,
)


def cfg(local_as: int, peer_as: int, rid: str, **kw: object) -> SessionConfig:
    return SessionConfig.build(local_as, peer_as, ipaddress.IPv4Address(rid), rng=random.Random(1), **kw)  # type: ignore[arg-type]


def drain(s: Session) -> list[SessionEvent]:
    out = []
    while (e := s.next_event()) is not None:
        out.append(e)
    return out


class Link:
    """Two sessions joined by an in-memory 'TCP connection'."""

    def __init__(self, a: Session, b: Session) -> None:
        self.a, self.b = a, b
        self.events: dict[int, list[SessionEvent]] = {id(a): [], id(b): []}
        self.open = False

    def pump(self, now: float) -> None:
        for _ in range(100):
            moved = False
            for src, dst in ((self.a, self.b), (self.b, self.a)):
                evs = drain(src)
                self.events[id(src)] += evs
                for e in evs:
                    if isinstance(e, ConnectRequested) and not self.open:
                        self.open = True
                        self.a.connection_made(now)
                        self.b.connection_made(now)
                        moved = True
                    if isinstance(e, CloseRequested) and self.open:
                        self.open = False
                        data = src.data_to_send()
                        dst.receive_data(data, now)
                        dst.receive_data(b"", now)
                        moved = True
                data = src.data_to_send()
                if data and self.open:
                    dst.receive_data(data, now)
                    moved = True
            if not moved:
                return
        raise AssertionError("link did not settle")

    def of(self, s: Session, kind: type) -> list:
        return [e for e in self.events[id(s)] if isinstance(e, kind)]


def established_pair(**kw: object) -> tuple[Session, Session, Link]:
    a = Session(cfg(64512, 64513, "192.0.2.1", **kw))
    b = Session(cfg(64513, 64512, "192.0.2.2", passive=True, **kw))
    link = Link(a, b)
    b.start(0.0)
    a.start(0.0)
    link.pump(0.0)
    assert a.state is State.ESTABLISHED and b.state is State.ESTABLISHED
    return a, b, link


def test_pair_reaches_established_and_negotiates() -> None:
    a, _b, link = established_pair(hold_time=30, families=(IPV4_UNICAST, IPV6_UNICAST))
    (up,) = link.of(a, SessionUp)
    assert up.params.hold_time == 30 and up.params.keepalive_time == 10
    assert up.params.peer_as == 64513 and up.params.ctx.four_octet_as
    assert up.params.families == (IPV4_UNICAST, IPV6_UNICAST)
    assert up.params.route_refresh and up.params.enhanced_route_refresh
    assert Timer.HOLD in a.deadlines and Timer.KEEPALIVE in a.deadlines


def test_a_session_that_stores_routes_interns_more_of_what_it_decodes() -> None:
    # Stored attributes stay alive anyway: sharing equal ones saves memory. Dropped ones would only
    # feed the cyclic GC (negotiated.py).
    for store, expected in ((False, INTERN_STREAMED), (True, INTERN_STORED)):
        a, _b, link = established_pair(store_routes=store)
        (up,) = link.of(a, SessionUp)
        assert up.params.ctx.intern_max == expected
    assert INTERN_STREAMED < INTERN_STORED


def test_hold_time_is_the_minimum_and_zero_disables_keepalives() -> None:
    a = Session(cfg(64512, 64513, "192.0.2.1", hold_time=0))
    b = Session(cfg(64513, 64512, "192.0.2.2", passive=True, hold_time=90))
    link = Link(a, b)
    b.start(0)
    a.start(0)
    link.pump(0)
    assert a.established and b.established
    assert b.params is not None and b.params.hold_time == 0
    assert Timer.HOLD not in b.deadlines and Timer.KEEPALIVE not in b.deadlines


def test_updates_flow_and_are_counted() -> None:
    a, b, link = established_pair(families=(IPV4_UNICAST,))
    attrs = (Origin(0), AsPath.sequence(64512), NextHop(ipaddress.IPv4Address("192.0.2.1")))
    prefixes = [Prefix.host(f"198.51.100.{i}") for i in range(10)]
    assert a.send_updates(pack_updates(attrs, prefixes), 1.0) == 1
    link.pump(1.0)
    (got,) = link.of(b, UpdateReceived)
    assert list(got.update.nlri) == prefixes
    assert len(b.received[IPV4_UNICAST]) == 10
    a.send_updates(pack_withdrawals(prefixes[:4]), 2.0)
    link.pump(2.0)
    assert len(b.received[IPV4_UNICAST]) == 6


def test_keepalives_keep_the_session_up_and_silence_expires_the_hold_timer() -> None:
    a, b, link = established_pair(hold_time=9)
    for t in range(1, 60):
        for s in (a, b):
            s.handle_timer(float(t))
        link.pump(float(t))
    assert a.established and b.established
    # Cut the link: b hears nothing more; its hold timer (9 s) expires.
    link.open = False
    now = 60.0
    while b.established and now < 80:
        now += 1
        b.handle_timer(now)
        drain(a)
        a.data_to_send()
    assert b.state is State.IDLE
    (down,) = [e for e in drain(b) if isinstance(e, SessionDown)] or link.of(b, SessionDown)
    assert down.reason.kind is DownKind.HOLD_TIMER_EXPIRED and down.was_established
    assert down.reason.notification == Notification(4, 0)


def test_graceful_stop_sends_rfc9003_message() -> None:
    a, b, link = established_pair()
    a.stop(5.0, "maintenance: node drain")
    link.pump(5.0)
    assert a.state is State.IDLE and b.state is State.IDLE
    (down_b,) = link.of(b, SessionDown)
    assert down_b.reason.kind is DownKind.NOTIFICATION_RECEIVED
    assert down_b.reason.notification is not None
    assert down_b.reason.notification.shutdown_message == "maintenance: node drain"
    (down_a,) = link.of(a, SessionDown)
    assert down_a.reason.kind is DownKind.ADMIN_STOP
    # a was stopped administratively: it does not restart by itself.
    assert Timer.IDLE_HOLD not in a.deadlines
    # b restarts after its idle hold time.
    assert Timer.IDLE_HOLD in b.deadlines


def test_damping_doubles_idle_hold_and_resets_after_a_stable_session() -> None:
    s = Session(cfg(64512, 64513, "192.0.2.1", idle_hold_time=2.0, max_idle_hold_time=16.0))
    s.start(0.0)
    holds = []
    now = 0.0
    for _ in range(6):
        s.connection_made(now)
        s.receive_data(b"", now)  # peer closes in OpenSent -> Active
        # an FSM-level failure: hold timer in OpenSent
        s.connection_made(now)
        s.handle_timer(now + 240)
        now += 240
        assert s.state is State.IDLE
        holds.append(s.deadlines[Timer.IDLE_HOLD] - now)
        now = s.deadlines[Timer.IDLE_HOLD]
        s.handle_timer(now)
        assert s.state is State.CONNECT
    # Each failure doubles the (jittered, 0.75..1.0) wait until the cap.
    assert 1.5 <= holds[0] <= 2.0 and 3.0 <= holds[1] <= 4.0 and 6.0 <= holds[2] <= 8.0
    assert all(12.0 <= h <= 16.0 for h in holds[3:])


def test_route_refresh_request_reaches_the_other_side() -> None:
    a, b, link = established_pair(families=(IPV4_UNICAST, IPV6_UNICAST))
    assert a.send_route_refresh(IPV6_UNICAST, 1.0)
    link.pump(1.0)
    assert link.of(b, RouteRefreshRequested) == [RouteRefreshRequested(IPV6_UNICAST, 0)]


def test_route_refresh_for_unnegotiated_family_is_ignored() -> None:
    _a, b, _link = established_pair(families=(IPV4_UNICAST,))
    b.receive_data(encode(RouteRefresh(2, 1, 0)), 1.0)
    assert not [e for e in drain(b) if isinstance(e, RouteRefreshRequested)]
    assert b.established


def test_unexpected_update_in_openconfirm_is_fsm_error_with_rfc6608_subcode() -> None:
    a = Session(cfg(64512, 64513, "192.0.2.1"))
    a.start(0)
    a.connection_made(0)
    a.data_to_send()
    peer_open = Open.build(64513, 90, "192.0.2.2")
    a.receive_data(encode(peer_open), 0)
    assert a.state is State.OPENCONFIRM
    a.data_to_send()
    a.receive_data(encode(pack_updates_one()), 0)
    sent = split_messages(a.data_to_send())
    assert sent == [Notification(5, 2)]
    assert a.state is State.IDLE


def pack_updates_one() -> object:
    attrs = (Origin(0), AsPath.sequence(64513), NextHop(ipaddress.IPv4Address("192.0.2.2")))
    return decode(pack_updates(attrs, [Prefix.host("198.51.100.1")])[0])


def test_bad_peer_as_is_rejected_with_open_error() -> None:
    a = Session(cfg(64512, 64513, "192.0.2.1"))
    a.start(0)
    a.connection_made(0)
    a.data_to_send()
    a.receive_data(encode(Open.build(64999, 90, "192.0.2.2")), 0)
    (note,) = split_messages(a.data_to_send())
    assert isinstance(note, Notification) and (note.code, note.subcode) == (2, 2)
    assert a.state is State.IDLE


def test_header_error_answered_but_malformed_notification_is_not() -> None:
    _a, b, _link = established_pair()
    b.receive_data(b"\x00" * 19, 1.0)
    (note,) = split_messages(b.data_to_send())
    assert isinstance(note, Notification) and (note.code, note.subcode) == (1, 1)
    _a2, b2, _ = established_pair()
    bad_notification = b"\xff" * 16 + b"\x00\x14\x03" + b"\x06"  # length 20 < 21 for a NOTIFICATION
    b2.receive_data(bad_notification, 1.0)
    assert b2.data_to_send() == b""
    assert b2.state is State.IDLE


def test_collision_dump_sends_cease_7() -> None:
    a, _b, _link = established_pair()
    a.collision_dump(3.0)
    assert split_messages(a.data_to_send()) == [Notification(6, 7)]
    assert a.state is State.IDLE and Timer.IDLE_HOLD not in a.deadlines


def test_max_prefix_cease_and_log() -> None:
    attrs = (Origin(0), AsPath.sequence(64512), NextHop(ipaddress.IPv4Address("192.0.2.1")))
    prefixes = [Prefix.host(f"198.51.100.{i}") for i in range(20)]
    a, b, link = established_pair(max_prefixes=10)
    a.send_updates(pack_updates(attrs, prefixes), 1.0)
    link.pump(1.0)
    (down,) = link.of(b, SessionDown)
    assert down.reason.kind is DownKind.MAX_PREFIX
    assert down.reason.notification == Notification(6, 1, b"\x00\x01\x01\x00\x00\x00\x0a")
    a, b, link = established_pair(max_prefixes=10, max_prefix_action="log")
    a.send_updates(pack_updates(attrs, prefixes), 1.0)
    link.pump(1.0)
    assert b.established and len(b.received[IPV4_UNICAST]) == 10
    assert link.of(b, MaxPrefixExceeded) == [MaxPrefixExceeded(IPV4_UNICAST, 11)]


def test_graceful_restart_capability_reaches_the_helper() -> None:
    _a, b, _link = established_pair(
        graceful_restart=GracefulRestartConfig(restart_time=90, restarting=True), families=(IPV4_UNICAST,)
    )
    assert b.params is not None and b.params.peer_graceful_restart is not None
    gr = b.params.peer_graceful_restart
    assert gr.restart_time == 90 and gr.restarting
    assert [f.forwarding for f in gr.families] == [True]


def test_connect_retry_requests_new_connections_with_jitter() -> None:
    s = Session(cfg(64512, 64513, "192.0.2.1", connect_retry_time=10.0))
    s.start(0.0)
    assert isinstance(s.next_event(), ConnectRequested)
    s.connection_failed(1.0)
    assert s.state is State.ACTIVE
    t = s.get_timer()
    assert t is not None and 7.5 <= t <= 10.0
    s.handle_timer(t)
    assert s.state is State.CONNECT
    assert any(isinstance(e, ConnectRequested) for e in drain(s))


def test_passive_session_waits_and_refuses_nothing() -> None:
    s = Session(cfg(64512, 64513, "192.0.2.1", passive=True))
    s.start(0.0)
    assert s.state is State.ACTIVE and s.get_timer() is None
    assert not any(isinstance(e, ConnectRequested) for e in drain(s))
    s.connection_made(1.0)
    assert s.state is State.OPENSENT
    assert isinstance(split_messages(s.data_to_send())[0], Open)


def test_keepalive_message_in_opensent_is_fsm_error() -> None:
    s = Session(cfg(64512, 64513, "192.0.2.1"))
    s.start(0)
    s.connection_made(0)
    s.data_to_send()
    s.receive_data(encode(Keepalive()), 0)
    assert split_messages(s.data_to_send()) == [Notification(5, 1)]


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="hold_time"):
        cfg(64512, 64513, "192.0.2.1", hold_time=2)
    with pytest.raises(ValueError, match="peer_as"):
        cfg(64512, 0, "192.0.2.1")
    with pytest.raises(ValueError, match="router_id"):
        cfg(64512, 64513, "0.0.0.0")
    base = cfg(64512, 64513, "192.0.2.1")
    with pytest.raises(ValueError, match="max_prefix_action"):
        replace(base.peer, max_prefix_action="drop")


def test_a_route_carrying_our_own_as_is_a_loop_and_not_counted() -> None:
    a, b, link = established_pair()
    hop = NextHop(ipaddress.IPv4Address("192.0.2.1"))
    p = Prefix.host("198.51.100.7")
    a.send_updates(pack_updates((Origin(0), AsPath.sequence(64512), hop), [p]), 1.0)
    link.pump(1.0)
    assert b.received[IPV4_UNICAST] == {p}
    # The same prefix comes back with b's own AS (64513) in the path: it replaces the old path as a loop.
    a.send_updates(pack_updates((Origin(0), AsPath.sequence(64512, 64513, 64999), hop), [p]), 2.0)
    link.pump(2.0)
    assert b.received[IPV4_UNICAST] == set() and b.established
    assert [e.looped for e in link.of(b, UpdateReceived)] == [False, True]
