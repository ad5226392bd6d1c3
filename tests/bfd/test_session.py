"""BfdSession (RFC 5880 §6): the §6.8.6 table pair by pair, timers, Poll/Final, detection, admin, auth.

No test sleeps: time is the ``now`` argument.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.bfd import (
    AuthConfig,
    AuthType,
    BfdConfig,
    BfdSession,
    BfdStateChanged,
    ChangeReason,
    ControlPacket,
    Diag,
    DropReason,
    SessionKey,
    State,
    encode_control,
)
from bgpsvc.bfd.session import Timer

from .test_packet import packets

KEY = SessionKey("192.0.2.2")
LOCAL, REMOTE = 0x1111, 0x2222
S = State


def session(now: float = 0.0, **kw: object) -> BfdSession:
    kw.setdefault("rng", random.Random(7))
    return BfdSession(BfdConfig(KEY, **kw), LOCAL, now)  # type: ignore[arg-type]


def peer(state: State, **kw: object) -> ControlPacket:
    kw.setdefault("your_discriminator", 0 if state in (S.DOWN, S.ADMIN_DOWN) else LOCAL)
    kw.setdefault("detect_mult", 3)
    kw.setdefault("my_discriminator", REMOTE)
    return ControlPacket(state, **kw)  # type: ignore[arg-type]


def events(s: BfdSession) -> list[BfdStateChanged]:
    out = []
    while (ev := s.next_event()) is not None:
        out.append(ev)
    return out


def bring_to(state: State) -> BfdSession:
    s = session()
    if state is S.INIT:
        s.receive_packet(peer(S.DOWN), 0.0)
    elif state is S.UP:
        s.receive_packet(peer(S.INIT), 0.0)
    elif state is S.ADMIN_DOWN:
        s.admin_down(0.0)
    assert s.state is state
    events(s)
    s.packets_to_send()
    return s


ND = Diag.NEIGHBOR_SIGNALED_SESSION_DOWN
#: Written from RFC 5880 §6.2 / §6.8.6 independently of the code's table:
#: (local, received) -> (next, diag after, reason of the change or None if no change)
EXPECTED = {
    (S.ADMIN_DOWN, S.ADMIN_DOWN): (S.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN, None),
    (S.ADMIN_DOWN, S.DOWN): (S.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN, None),
    (S.ADMIN_DOWN, S.INIT): (S.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN, None),
    (S.ADMIN_DOWN, S.UP): (S.ADMIN_DOWN, Diag.ADMINISTRATIVELY_DOWN, None),
    (S.DOWN, S.ADMIN_DOWN): (S.DOWN, Diag.NO_DIAGNOSTIC, None),
    (S.DOWN, S.DOWN): (S.INIT, Diag.NO_DIAGNOSTIC, ChangeReason.PEER_STATE),
    (S.DOWN, S.INIT): (S.UP, Diag.NO_DIAGNOSTIC, ChangeReason.PEER_STATE),
    (S.DOWN, S.UP): (S.DOWN, Diag.NO_DIAGNOSTIC, None),
    (S.INIT, S.ADMIN_DOWN): (S.DOWN, ND, ChangeReason.NEIGHBOR_ADMIN_DOWN),
    (S.INIT, S.DOWN): (S.INIT, Diag.NO_DIAGNOSTIC, None),
    (S.INIT, S.INIT): (S.UP, Diag.NO_DIAGNOSTIC, ChangeReason.PEER_STATE),
    (S.INIT, S.UP): (S.UP, Diag.NO_DIAGNOSTIC, ChangeReason.PEER_STATE),
    (S.UP, S.ADMIN_DOWN): (S.DOWN, ND, ChangeReason.NEIGHBOR_ADMIN_DOWN),
    (S.UP, S.DOWN): (S.DOWN, ND, ChangeReason.NEIGHBOR_DOWN),
    (S.UP, S.INIT): (S.UP, Diag.NO_DIAGNOSTIC, None),
    (S.UP, S.UP): (S.UP, Diag.NO_DIAGNOSTIC, None),
}


@pytest.mark.parametrize(("local", "received"), sorted(EXPECTED), ids=str)
def test_every_pair_of_the_6_8_6_table(local: State, received: State) -> None:
    s = bring_to(local)
    s.receive_packet(peer(received), 1.0)
    new, diag, reason = EXPECTED[local, received]
    assert (s.state, s.local_diag) == (new, diag)
    evs = events(s)
    if reason is None:
        assert evs == []
    else:
        assert evs == [BfdStateChanged(KEY, local, new, diag, reason)]
        assert s.packets_to_send()[0].state is new  # the peer hears about it at once
    assert s.remote_discr == REMOTE and s.remote_state is received  # recorded even when AdminDown
    if local is S.ADMIN_DOWN:
        assert s.dropped[DropReason.ADMIN_DOWN] == 1


def test_rfc_5882_failure_flag() -> None:
    s = bring_to(S.UP)
    s.receive_packet(peer(S.ADMIN_DOWN), 1.0)
    (ev,) = events(s)
    assert not ev.is_failure  # the peer switched BFD off: keep BGP up
    s = bring_to(S.UP)
    s.receive_packet(peer(S.DOWN, your_discriminator=LOCAL), 1.0)
    (ev,) = events(s)
    assert ev.is_failure
    s = bring_to(S.UP)
    s.admin_down(1.0)
    (ev,) = events(s)
    assert not ev.is_failure and ev.new is S.ADMIN_DOWN and ev.diag is Diag.ADMINISTRATIVELY_DOWN


def test_full_handshake_between_two_sessions_and_detection_both_ways() -> None:
    a = BfdSession(BfdConfig(SessionKey("192.0.2.2"), 100_000, 100_000, 3, rng=random.Random(1)), 1, 0.0)
    b = BfdSession(BfdConfig(SessionKey("192.0.2.1"), 100_000, 100_000, 3, rng=random.Random(2)), 2, 0.0)
    now = 0.0
    while now < 3.0:
        for x, y in ((a, b), (b, a)):
            for d in x.datagrams_to_send():
                y.receive_packet(d, now, ttl=255)
        now = min(t for t in (a.get_timer(), b.get_timer()) if t is not None)
        a.handle_timer(now)
        b.handle_timer(now)
    assert a.state is b.state is S.UP
    assert a.status().tx_interval_us == 100_000 and not a.status().polling and not b.status().polling
    assert a.status().detection_time_us == 300_000
    # b stops hearing a: down within one detection time, diag 1
    a.datagrams_to_send()
    last = b.deadlines[Timer.DETECT] - 0.3  # when b last heard a
    assert now - 0.1 <= last <= now
    b.handle_timer(last + 0.299)
    assert b.state is S.UP
    b.handle_timer(last + 0.3001)
    assert b.state is S.DOWN and b.local_diag is Diag.CONTROL_DETECTION_TIME_EXPIRED
    assert b.remote_discr == 0 and b.status().flaps == 1
    assert b.status().last_down_diag is Diag.CONTROL_DETECTION_TIME_EXPIRED


# ------------------------------------------------------------------ timers (§6.8.2-§6.8.4, §6.8.7)


def periodic_gaps(s: BfdSession, start: float, count: int) -> list[float]:
    now, gaps = start, []
    s.packets_to_send()
    for _ in range(count):
        t = s.deadlines[Timer.TX]
        gaps.append(t - now)
        now = t
        s.handle_timer(now)
        assert len(s.packets_to_send()) == 1
    return gaps


def test_slow_transmission_while_not_up() -> None:
    s = session(desired_min_tx_us=50_000, required_min_rx_us=50_000)
    assert s.get_timer() == 0.0  # the first packet goes out at once
    s.handle_timer(0.0)
    (pkt,) = s.packets_to_send()
    assert pkt.desired_min_tx == 1_000_000 and pkt.required_min_rx == 50_000 and pkt.state is S.DOWN
    gaps = periodic_gaps(s, 0.0, 200)
    assert all(0.75 <= g <= 1.0 for g in gaps)
    assert max(gaps) - min(gaps) > 0.1  # really jittered


@pytest.mark.parametrize(("mult", "high"), [(3, 1.0), (1, 0.9)])
def test_jitter_bounds(mult: int, high: float) -> None:
    s = session(desired_min_tx_us=100_000, detect_mult=mult)
    # the peer's mult 255 keeps the session Up for 25.5 s without more packets
    s.receive_packet(peer(S.INIT, required_min_rx=10_000, desired_min_tx=10_000, detect_mult=255), 0.0)
    gaps = periodic_gaps(s, 0.0, 200)
    assert s.state is S.UP
    assert all(0.075 - 1e-9 <= g <= 0.1 * high + 1e-9 for g in gaps)
    assert min(gaps) < 0.08 and max(gaps) > 0.1 * high - 0.005


def test_negotiated_intervals_and_detection_time() -> None:
    s = session(desired_min_tx_us=100_000, required_min_rx_us=100_000)
    s.receive_packet(peer(S.INIT, detect_mult=5, desired_min_tx=200_000, required_min_rx=300_000), 0.0)
    st_ = s.status()
    assert st_.state is S.UP
    assert st_.tx_interval_us == 300_000  # max(our desired tx, their required rx)
    assert st_.rx_interval_us == 200_000  # max(our required rx, their desired tx)
    assert st_.detection_time_us == 5 * 200_000  # their mult
    assert s.deadlines[Timer.DETECT] == pytest.approx(1.0)


def test_remote_min_rx_zero_stops_periodic_transmission() -> None:
    s = bring_to(S.UP)
    s.receive_packet(peer(S.UP, required_min_rx=0), 1.0)
    s.packets_to_send()
    assert Timer.TX not in s.deadlines
    s.receive_packet(peer(S.UP, required_min_rx=100_000), 2.0)
    assert Timer.TX in s.deadlines


def test_passive_waits_for_the_peer() -> None:
    s = session(passive=True)
    assert s.get_timer() is None and s.packets_to_send() == ()
    s.receive_packet(peer(S.DOWN), 5.0)
    assert s.state is S.INIT and s.packets_to_send()[0].your_discriminator == REMOTE


# ------------------------------------------------------------------ Poll / Final (§6.5, §6.8.3)


def up_with_poll_done(**kw: object) -> BfdSession:
    s = session(desired_min_tx_us=100_000, required_min_rx_us=100_000, **kw)
    s.receive_packet(peer(S.INIT, desired_min_tx=100_000, required_min_rx=100_000), 0.0)
    (up,) = s.packets_to_send()
    assert up.state is S.UP and up.poll and up.desired_min_tx == 100_000  # going Up is a timer change
    s.handle_timer(s.deadlines[Timer.TX])
    assert s.packets_to_send()[0].poll  # polls until the Final
    s.receive_packet(peer(S.UP, final=True, desired_min_tx=100_000, required_min_rx=100_000), 0.2)
    s.handle_timer(s.deadlines[Timer.TX])
    (pkt,) = s.packets_to_send()
    assert not pkt.poll and not s.status().polling
    return s


def test_poll_received_is_answered_with_final_at_once() -> None:
    s = bring_to(S.UP)
    s.receive_packet(peer(S.UP, poll=True), 1.0)
    (final,) = s.packets_to_send()
    assert final.final and not final.poll


def test_final_answer_never_carries_poll_while_polling() -> None:
    s = session(desired_min_tx_us=100_000)
    s.receive_packet(peer(S.INIT, poll=True), 0.0)
    up, final = s.packets_to_send()
    assert up.poll and not up.final and final.final and not final.poll


def test_larger_tx_waits_for_the_final() -> None:
    s = up_with_poll_done()
    assert s.tx_interval_us == 100_000
    s.set_timers(1.0, desired_min_tx_us=500_000)
    assert s.tx_interval_us == 100_000 and s.status().desired_min_tx_us == 500_000
    s.handle_timer(s.deadlines[Timer.TX])
    (pkt,) = s.packets_to_send()
    assert pkt.poll and pkt.desired_min_tx == 500_000
    s.receive_packet(peer(S.UP, final=True, required_min_rx=100_000), 1.2)
    assert s.tx_interval_us == 500_000 and not s.status().polling


def test_smaller_rx_keeps_old_detection_time_until_final() -> None:
    s = up_with_poll_done()
    s.set_timers(1.0, required_min_rx_us=20_000)
    s.receive_packet(peer(S.UP, desired_min_tx=10_000), 1.0)
    assert s.detection_time_us == 300_000  # old 100 ms rx still used
    s.receive_packet(peer(S.UP, desired_min_tx=10_000, final=True), 1.01)
    assert s.detection_time_us == 3 * 20_000


def test_smaller_tx_and_larger_rx_apply_at_once() -> None:
    s = up_with_poll_done()
    s.receive_packet(peer(S.UP, required_min_rx=10_000, desired_min_tx=10_000), 1.0)
    s.set_timers(1.0, desired_min_tx_us=50_000, required_min_rx_us=400_000)
    assert s.tx_interval_us == 50_000 and s.detection_time_us == 3 * 400_000
    assert s.deadlines[Timer.TX] <= 1.05  # a shorter interval does not wait for the old gap


def test_change_during_poll_starts_another_poll() -> None:
    s = up_with_poll_done()
    s.set_timers(1.0, desired_min_tx_us=200_000)
    s.set_timers(1.0, desired_min_tx_us=400_000)
    s.receive_packet(peer(S.UP, final=True, required_min_rx=1), 1.1)  # may answer the 200 ms poll only
    assert s.tx_interval_us == 200_000 and s.status().polling
    s.receive_packet(peer(S.UP, final=True, required_min_rx=1), 1.2)
    assert s.tx_interval_us == 400_000 and not s.status().polling


def test_going_down_drops_back_to_one_second() -> None:
    s = up_with_poll_done()
    s.handle_timer(10.0)
    assert s.state is S.DOWN
    (pkt, *_) = s.packets_to_send()
    assert (
        pkt.desired_min_tx == 1_000_000 and not pkt.poll and pkt.diag == Diag.CONTROL_DETECTION_TIME_EXPIRED
    )


# ------------------------------------------------------------------ admin, TTL, auth


def test_admin_down_and_enable() -> None:
    s = bring_to(S.UP)
    s.admin_down(1.0)
    (pkt,) = s.packets_to_send()
    assert pkt.state is S.ADMIN_DOWN and pkt.diag == Diag.ADMINISTRATIVELY_DOWN
    s.handle_timer(100.0)  # no detection in AdminDown; it keeps telling the peer slowly
    assert s.state is S.ADMIN_DOWN and s.packets_to_send()[0].desired_min_tx == 1_000_000
    s.enable(101.0)
    assert s.state is S.DOWN and s.local_diag is Diag.NO_DIAGNOSTIC
    assert [e.reason for e in events(s)] == [ChangeReason.ADMIN_DOWN, ChangeReason.ADMIN_ENABLE]


def test_ttl_checks() -> None:
    s = session()
    s.receive_packet(peer(S.DOWN), 0.0, ttl=254)
    assert s.state is S.DOWN and s.dropped[DropReason.TTL] == 1 and s.remote_discr == 0
    s.receive_packet(peer(S.DOWN), 0.0, ttl=255)
    assert s.state is S.INIT
    mh = BfdSession(BfdConfig(SessionKey("198.51.100.1", multihop=True), min_ttl=250), 5, 0.0)
    mh.receive_packet(peer(S.DOWN), 0.0, ttl=249)
    assert mh.dropped[DropReason.TTL] == 1
    mh.receive_packet(peer(S.DOWN), 0.0, ttl=250)
    assert mh.state is S.INIT
    with pytest.raises(ValueError, match="min_ttl"):
        BfdConfig(KEY, min_ttl=254)


def test_wrong_your_discriminator_is_dropped() -> None:
    s = bring_to(S.UP)
    s.receive_packet(peer(S.DOWN, your_discriminator=LOCAL + 1), 1.0)
    assert s.state is S.UP and s.dropped[DropReason.NO_SESSION] == 1


@pytest.mark.parametrize("auth_type", list(AuthType))
def test_authenticated_sessions_come_up_and_reject_wrong_keys(auth_type: AuthType) -> None:
    good = AuthConfig(auth_type, 3, b"secret")
    a = BfdSession(BfdConfig(SessionKey("192.0.2.2"), auth=good, rng=random.Random(1)), 1, 0.0)
    b = BfdSession(BfdConfig(SessionKey("192.0.2.1"), auth=good, rng=random.Random(2)), 2, 0.0)
    for now in (0.0, 0.001, 0.002):
        for x, y in ((a, b), (b, a)):
            x.handle_timer(now)
            for d in x.datagrams_to_send():
                y.receive_packet(d, now)
    assert a.state is b.state is S.UP
    rogue = BfdSession(BfdConfig(SessionKey("192.0.2.1"), auth=AuthConfig(auth_type, 3, b"secreT")), 2, 0.0)
    rogue.handle_timer(0.0)
    for d in rogue.datagrams_to_send():
        a.receive_packet(d, 0.01)
    plain = session()
    plain.handle_timer(0.0)
    a.receive_packet(plain.datagrams_to_send()[0], 0.01)
    a.receive_packet(encode_control(peer(S.UP, your_discriminator=1)), 0.01)
    assert a.dropped[DropReason.AUTH_FAILED] == 1 and a.dropped[DropReason.AUTH_MISSING] == 2
    assert a.state is S.UP
    b.handle_timer(1.0)
    signed = b.datagrams_to_send()
    plain.receive_packet(signed[-1], 1.0)
    assert plain.dropped[DropReason.AUTH_UNEXPECTED] == 1
    if auth_type in (AuthType.METICULOUS_KEYED_MD5, AuthType.METICULOUS_KEYED_SHA1):
        before = a.packets_received
        a.receive_packet(signed[-1], 1.0)
        a.receive_packet(signed[-1], 1.0)  # replayed: same sequence number
        assert a.packets_received == before + 1 and a.dropped[DropReason.AUTH_FAILED] == 2


# ------------------------------------------------------------------ properties

inputs = st.lists(
    st.one_of(
        st.tuples(st.just("packet"), packets(), st.sampled_from([None, 255, 254])),
        st.tuples(st.just("time"), st.floats(0, 3)),
        st.tuples(st.sampled_from(["admin_down", "enable"])),
        st.tuples(
            st.just("timers"), st.integers(1, 2_000_000), st.integers(0, 2_000_000), st.integers(1, 10)
        ),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(inputs)
def test_any_input_sequence_keeps_the_invariants(seq: list[tuple[object, ...]]) -> None:
    s = session(desired_min_tx_us=100_000)
    now = 0.0
    for item in seq:
        before = s.state
        if item[0] == "packet":
            s.receive_packet(encode_control(item[1]), now, ttl=item[2])  # type: ignore[arg-type]
        elif item[0] == "time":
            now += item[1]  # type: ignore[operator]
            s.handle_timer(now)
        elif item[0] == "timers":
            s.set_timers(now, *item[1:])  # type: ignore[arg-type]
        else:
            getattr(s, str(item[0]))(now)
        evs = events(s)
        if s.state is not before:
            assert evs and evs[0].old is before and evs[-1].new is s.state
        for pkt in s.packets_to_send():
            assert not (pkt.poll and pkt.final)
            assert pkt.state is s.state or evs  # only the state we are (or just were) in
            assert pkt.desired_min_tx >= 1_000_000 or pkt.state is S.UP  # §6.8.3 slow rate
            assert pkt.my_discriminator == LOCAL
        timer = s.get_timer()
        assert timer is None or timer >= now  # nothing due is left unhandled
