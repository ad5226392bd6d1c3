"""BfdEndpoint: demultiplexing (RFC 5881 §3, RFC 5883 §4), drops counted, other sessions unaffected."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.bfd import BfdConfig, BfdEndpoint, ControlPacket, DropReason, SessionKey, State, encode_control

A_ADDR, B_ADDR = "192.0.2.1", "192.0.2.2"
PEERS = [f"198.51.100.{i}" for i in range(1, 21)]


def pair(n: int = 3, seed: int = 1) -> tuple[BfdEndpoint, BfdEndpoint]:
    """Endpoint ``a`` at 192.0.2.1 with sessions to b and to unconnected PEERS; ``b`` with one to a."""
    a, b = BfdEndpoint(random.Random(seed)), BfdEndpoint(random.Random(seed + 1))
    a.add_session(BfdConfig(SessionKey(B_ADDR), 100_000, 100_000, 3, rng=random.Random(seed)), 0.0)
    for p in PEERS[:n]:
        a.add_session(BfdConfig(SessionKey(p), rng=random.Random(seed)), 0.0)
    b.add_session(BfdConfig(SessionKey(A_ADDR), 100_000, 100_000, 3, rng=random.Random(seed + 2)), 0.0)
    return a, b


def run(a: BfdEndpoint, b: BfdEndpoint, until: float, now: float = 0.0, lose: float = 0.0) -> float:
    """Deliver a -> b and b -> a (to/from 192.0.2.1/2 only) until ``until``; ``lose``: loss ratio."""
    rnd = random.Random(5)
    while now < until:
        for src, dst, src_addr in ((a, b, A_ADDR), (b, a, B_ADDR)):
            for key, data in src.datagrams_to_send():
                if key.peer in (A_ADDR, B_ADDR) and rnd.random() >= lose:
                    dst.receive_datagram(data, now, peer=src_addr, local=key.peer, ttl=255)
        now = min(t for t in (a.get_timer(), b.get_timer(), until) if t is not None)
        a.handle_timer(now)
        b.handle_timer(now)
    return now


def drain(ep: BfdEndpoint) -> list[object]:
    out = []
    while (ev := ep.next_event()) is not None:
        out.append(ev)
    return out


def test_sessions_come_up_and_the_others_stay_down() -> None:
    a, b = pair()
    run(a, b, 3.0)
    assert a.status(SessionKey(B_ADDR)).state is State.UP
    assert b.status(SessionKey(A_ADDR)).state is State.UP
    assert all(a.status(SessionKey(p)).state is State.DOWN for p in PEERS[:3])
    assert [(e.old, e.new) for e in drain(a)] == [(State.DOWN, State.INIT), (State.INIT, State.UP)]
    assert a.dropped_total() == {}


def test_routing_by_address_when_your_discriminator_is_zero() -> None:
    ep = BfdEndpoint(random.Random(3))
    wild = ep.add_session(BfdConfig(SessionKey(B_ADDR)), 0.0)
    pinned = ep.add_session(BfdConfig(SessionKey("198.51.100.9", local="198.51.100.1")), 0.0)
    multi = ep.add_session(BfdConfig(SessionKey("198.51.100.9", multihop=True)), 0.0)
    down = encode_control(ControlPacket(State.DOWN, 3, my_discriminator=77))
    assert ep.receive_datagram(down, 0.0, peer=B_ADDR, local="192.0.2.1", ttl=255) is wild
    assert ep.receive_datagram(down, 0.0, peer="198.51.100.9", local="198.51.100.1", ttl=255) is pinned
    assert ep.receive_datagram(down, 0.0, peer="198.51.100.9", local="198.51.100.7", ttl=255) is None
    assert ep.receive_datagram(down, 0.0, peer="198.51.100.9", multihop=True, ttl=254) is multi
    assert ep.dropped == {DropReason.NO_SESSION: 1}
    assert wild.state is pinned.state is multi.state is State.INIT


def test_routing_by_your_discriminator_checks_the_source() -> None:
    ep = BfdEndpoint(random.Random(3))
    s1 = ep.add_session(BfdConfig(SessionKey(A_ADDR)), 0.0)
    s2 = ep.add_session(BfdConfig(SessionKey(B_ADDR)), 0.0)
    init_for_s1 = encode_control(ControlPacket(State.INIT, 3, 9, your_discriminator=s1.local_discr))
    assert ep.receive_datagram(init_for_s1, 0.0, peer=B_ADDR, ttl=255) is None  # spoofed
    assert ep.receive_datagram(init_for_s1, 0.0, peer=A_ADDR, multihop=True, ttl=255) is None
    bogus = encode_control(ControlPacket(State.UP, 3, 9, your_discriminator=12345))
    assert ep.receive_datagram(bogus, 0.0, peer=A_ADDR, ttl=255) is None
    assert ep.dropped == {DropReason.ADDRESS_MISMATCH: 2, DropReason.NO_SESSION: 1}
    assert s1.state is s2.state is State.DOWN and s1.packets_received == s2.packets_received == 0
    assert ep.receive_datagram(init_for_s1, 0.0, peer=A_ADDR, ttl=255) is s1
    assert s1.state is State.UP and s2.state is State.DOWN


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=20), st.sampled_from([1, 64, 254]))
def test_junk_is_dropped_and_counted_and_the_up_session_stays_up(junk: list[bytes], ttl: int) -> None:
    a, b = pair(n=1)
    now = run(a, b, 2.0)
    key = SessionKey(B_ADDR)
    received = a.status(key).packets_received
    for data in junk:
        a.receive_datagram(data, now, peer=B_ADDR, ttl=ttl)  # never raises
    assert sum(a.dropped_total().values()) == len(junk)  # every one dropped (TTL at the latest) ...
    assert a.status(key).packets_received == received  # ... and none reached the state machine
    run(a, b, now + 2.0, now)
    assert a.status(key).state is State.UP and b.status(SessionKey(A_ADDR)).state is State.UP


def test_wrong_ttl_is_counted_on_the_session_and_does_not_disturb_it() -> None:
    a, b = pair(n=0)
    now = run(a, b, 2.0)
    s = a.sessions[SessionKey(B_ADDR)]
    forged = encode_control(ControlPacket(State.DOWN, 3, s.remote_discr, your_discriminator=s.local_discr))
    for _ in range(5):
        a.receive_datagram(forged, now, peer=B_ADDR, ttl=254)
    assert s.dropped[DropReason.TTL] == 5 and a.dropped_total()[DropReason.TTL] == 5
    assert s.state is State.UP
    a.receive_datagram(forged, now, peer=B_ADDR, ttl=255)
    assert s.state is State.DOWN  # the same packet with TTL 255 is believed


def test_detection_in_both_directions_and_recovery_with_loss() -> None:
    a, b = pair(n=2)
    now = run(a, b, 2.0, lose=0.1)  # 10% loss (seeded): never three in a row here
    drain(a)
    drain(b)
    assert a.status(SessionKey(B_ADDR)).flaps == 0
    now = run(a, b, now + 1.0, now, lose=1.0)
    ea, eb = drain(a), drain(b)
    assert [(e.key, e.is_failure) for e in ea] == [(SessionKey(B_ADDR), True)]  # type: ignore[attr-defined]
    assert [e.is_failure for e in eb] == [True]  # type: ignore[attr-defined]
    run(a, b, now + 5.0, now)
    assert a.status(SessionKey(B_ADDR)).state is State.UP and a.status(SessionKey(B_ADDR)).flaps == 1


def test_remove_session_says_admin_down_and_then_forgets() -> None:
    a, b = pair(n=0)
    now = run(a, b, 2.0)
    drain(b)
    key = SessionKey(B_ADDR)
    discr = a.sessions[key].local_discr
    a.remove_session(key, now)
    ((k, last),) = a.datagrams_to_send()
    assert k == key and last[1] >> 6 == State.ADMIN_DOWN
    b.receive_datagram(last, now, peer=A_ADDR, ttl=255)
    (ev,) = drain(b)
    assert ev.new is State.DOWN and not ev.is_failure  # RFC 5882: not a failure
    assert a.get_timer() is None
    a.handle_timer(now + 10)
    stale = encode_control(ControlPacket(State.UP, 3, 9, your_discriminator=discr))
    assert a.receive_datagram(stale, now, peer=B_ADDR, ttl=255) is None
    assert a.dropped[DropReason.NO_SESSION] == 1
    with pytest.raises(KeyError):
        a.status(key)


def test_timer_heap_touches_only_due_sessions() -> None:
    ep = BfdEndpoint(random.Random(9))
    sessions = [
        ep.add_session(BfdConfig(SessionKey(p), rng=random.Random(i)), 0.0) for i, p in enumerate(PEERS)
    ]
    ep.handle_timer(0.0)
    assert len(ep.datagrams_to_send()) == len(PEERS)  # the first packet of each, at once
    t = ep.get_timer()
    assert t is not None and t == min(s.get_timer() for s in sessions if s.get_timer() is not None)
    ep.handle_timer(t)
    assert len(ep.datagrams_to_send()) == 1


def test_duplicate_session_is_refused() -> None:
    ep = BfdEndpoint()
    ep.add_session(BfdConfig(SessionKey("2001:db8::1")), 0.0)
    with pytest.raises(ValueError, match="exists"):
        ep.add_session(BfdConfig(SessionKey("2001:db8:0::1")), 0.0)
