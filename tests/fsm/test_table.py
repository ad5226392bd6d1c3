"""Every (state, input) pair of the FSM against RFC 4271 §8.2.2, written out independently of the table.

``EXPECTED`` says, for each pair, the next state, the messages sent and the events emitted, as read from
the RFC (and RFC 6608 for the FSM error subcodes). It is not derived from ``Session.transitions``: a
wrong row in the implementation's table fails here.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.fsm import (
    CloseRequested,
    ConnectRequested,
    Input,
    RouteRefreshRequested,
    Session,
    SessionConfig,
    SessionDown,
    SessionUp,
    State,
    StateChanged,
    Timer,
    UpdateReceived,
)
from bgpsvc.wire import (
    AsPath,
    Keepalive,
    NextHop,
    Notification,
    Open,
    Origin,
    Prefix,
    RouteRefresh,
    encode,
    pack_updates,
    split_messages,
)

PEER_OPEN = encode(Open.build(64513, 90, "192.0.2.2"))
HOP = NextHop(ipaddress.IPv4Address("192.0.2.2"))
UPDATE = pack_updates((Origin(0), AsPath.sequence(64513), HOP), [Prefix.host("198.51.100.1")])[0]
#: Two prefixes where one is allowed: over the limit with action "cease" (RFC 4486).
BIG_UPDATE = pack_updates(
    (Origin(0), AsPath.sequence(64513), HOP), [Prefix.host("198.51.100.1"), Prefix.host("198.51.100.2")]
)[0]
BAD_UPDATE = b"\xff" * 16 + b"\x00\x17\x02" + b"\x00\x09\x00\x00"  # withdrawn length overruns: session reset
BAD_OPEN = b"\xff" * 16 + b"\x00\x1d\x01" + bytes.fromhex("03fdea005ac000020200")  # version 3
BAD_RR = b"\xff" * 16 + b"\x00\x18\x05" + bytes.fromhex("0001000100")  # 24 octets
BAD_HEADER = b"\x00" * 19


def config(passive: bool = False) -> SessionConfig:
    return SessionConfig.build(
        64512, 64513, "192.0.2.1", rng=random.Random(7), max_prefixes=1, passive=passive
    )


def session_in(state: State) -> Session:
    """A session brought to ``state`` through its public API."""
    s = Session(config())
    if state is State.IDLE:
        return s
    s.start(0.0)
    if state is State.CONNECT:
        return s
    if state is State.ACTIVE:
        s.connection_failed(0.0)
        return s
    s.connection_made(0.0)
    if state is State.OPENSENT:
        return s
    s.receive_data(PEER_OPEN, 0.0)
    if state is State.OPENCONFIRM:
        return s
    s.receive_data(encode(Keepalive()), 0.0)
    assert s.state is State.ESTABLISHED
    return s


def _fire(timer: Timer, passive: bool = False) -> Callable[[Session, float], None]:
    def fire(s: Session, now: float) -> None:
        if passive:
            s.config = config(passive=True)
        s.deadlines[timer] = now
        s.handle_timer(now)

    return fire


def _data(data: bytes) -> Callable[[Session, float], None]:
    return lambda s, now: s.receive_data(data, now)


def _passive_start(s: Session, now: float) -> None:
    s.config = config(passive=True)
    s.start(now)


#: How each RFC event is produced through the public API.
APPLY: dict[Input, Callable[[Session, float], None]] = {
    Input.MANUAL_START: lambda s, now: s.start(now),
    Input.MANUAL_STOP: lambda s, now: s.stop(now, "bye"),
    Input.AUTOMATIC_START: _fire(Timer.IDLE_HOLD),
    Input.MANUAL_START_PASSIVE: _passive_start,
    Input.AUTOMATIC_START_PASSIVE: _fire(Timer.IDLE_HOLD, passive=True),
    Input.CONNECT_RETRY_TIMER_EXPIRES: _fire(Timer.CONNECT_RETRY),
    Input.HOLD_TIMER_EXPIRES: _fire(Timer.HOLD),
    Input.KEEPALIVE_TIMER_EXPIRES: _fire(Timer.KEEPALIVE),
    Input.TCP_CONNECTION_CONFIRMED: lambda s, now: s.connection_made(now),
    Input.TCP_CONNECTION_FAILS: lambda s, now: s.connection_failed(now),
    Input.BGP_OPEN: _data(PEER_OPEN),
    Input.BGP_HEADER_ERR: _data(BAD_HEADER),
    Input.BGP_OPEN_MSG_ERR: _data(BAD_OPEN),
    Input.OPEN_COLLISION_DUMP: lambda s, now: s.collision_dump(now),
    Input.NOTIF_MSG_VER_ERR: _data(encode(Notification(2, 1, b"\x00\x04"))),
    Input.NOTIF_MSG: _data(encode(Notification(6, 2))),
    Input.KEEPALIVE_MSG: _data(encode(Keepalive())),
    Input.UPDATE_MSG: _data(UPDATE),
    Input.UPDATE_MSG_ERR: _data(BAD_UPDATE),
    Input.MAX_PREFIX_EXCEEDED: _data(BIG_UPDATE),
    Input.ROUTE_REFRESH_MSG: _data(encode(RouteRefresh(1, 1))),
    Input.ROUTE_REFRESH_MSG_ERR: _data(BAD_RR),
    Input.BFD_DOWN: lambda s, now: s.bfd_down(now, "control detection time expired"),
}

S, In = State, Input
Outcome = tuple[State, tuple[str, ...], tuple[type, ...]]
NOTHING: tuple[str, ...] = ()
NO_EVENTS: tuple[type, ...] = ()
DOWN = (CloseRequested, SessionDown, StateChanged)  # a connected session going Idle
MESSAGES = {
    In.BGP_OPEN,
    In.BGP_HEADER_ERR,
    In.BGP_OPEN_MSG_ERR,
    In.NOTIF_MSG_VER_ERR,
    In.NOTIF_MSG,
    In.KEEPALIVE_MSG,
    In.UPDATE_MSG,
    In.UPDATE_MSG_ERR,
    In.MAX_PREFIX_EXCEEDED,
    In.ROUTE_REFRESH_MSG,
    In.ROUTE_REFRESH_MSG_ERR,
}
STARTS = {In.MANUAL_START, In.AUTOMATIC_START, In.MANUAL_START_PASSIVE, In.AUTOMATIC_START_PASSIVE}
FSM_SUBCODE = {S.OPENSENT: 1, S.OPENCONFIRM: 2, S.ESTABLISHED: 3}  # RFC 6608 §3


def _idle() -> dict[Input, Outcome]:
    # Idle: starting connects (or waits, passive); an incoming connection is refused; the rest is ignored.
    out = {i: (S.IDLE, NOTHING, NO_EVENTS) for i in Input}
    out[In.MANUAL_START] = out[In.AUTOMATIC_START] = (S.CONNECT, NOTHING, (ConnectRequested, StateChanged))
    out[In.MANUAL_START_PASSIVE] = out[In.AUTOMATIC_START_PASSIVE] = (S.ACTIVE, NOTHING, (StateChanged,))
    out[In.TCP_CONNECTION_CONFIRMED] = (S.IDLE, NOTHING, (CloseRequested,))
    return out


def _unconnected(state: State) -> dict[Input, Outcome]:
    # Connect/Active: no TCP yet, so no message can arrive; "any other event" goes Idle (§8.2.2).
    out: dict[Input, Outcome] = {i: (S.IDLE, NOTHING, (StateChanged,)) for i in Input}
    for i in MESSAGES:
        out[i] = (state, NOTHING, NO_EVENTS)
    for i in STARTS:
        out[i] = (state, NOTHING, NO_EVENTS)
    out[In.CONNECT_RETRY_TIMER_EXPIRES] = (
        (S.CONNECT, NOTHING, (ConnectRequested,))
        if state is S.CONNECT
        else (S.CONNECT, NOTHING, (ConnectRequested, StateChanged))
    )
    out[In.TCP_CONNECTION_CONFIRMED] = (S.OPENSENT, ("open",), (StateChanged,))
    out[In.TCP_CONNECTION_FAILS] = (S.ACTIVE, NOTHING, (StateChanged,) if state is S.CONNECT else NO_EVENTS)
    return out


def _connected(state: State) -> dict[Input, Outcome]:
    sub = FSM_SUBCODE[state]
    out: dict[Input, Outcome] = {i: (S.IDLE, (f"notification 5/{sub}",), DOWN) for i in Input}
    for i in STARTS:
        out[i] = (state, NOTHING, NO_EVENTS)
    # A second connection is tracked by collision detection (§6.8), not by this session.
    out[In.TCP_CONNECTION_CONFIRMED] = (state, NOTHING, NO_EVENTS)
    out[In.MANUAL_STOP] = (S.IDLE, ("notification 6/2",), DOWN)
    out[In.HOLD_TIMER_EXPIRES] = (S.IDLE, ("notification 4/0",), DOWN)
    out[In.BGP_HEADER_ERR] = (S.IDLE, ("notification 1/1",), DOWN)
    out[In.BGP_OPEN_MSG_ERR] = (S.IDLE, ("notification 2/1",), DOWN)
    out[In.OPEN_COLLISION_DUMP] = (S.IDLE, ("notification 6/7",), DOWN)
    out[In.BFD_DOWN] = (S.IDLE, ("notification 6/10",), DOWN)  # RFC 9384
    out[In.NOTIF_MSG] = out[In.NOTIF_MSG_VER_ERR] = (S.IDLE, NOTHING, DOWN)
    if state is S.OPENSENT:
        out[In.TCP_CONNECTION_FAILS] = (S.ACTIVE, NOTHING, DOWN)
        out[In.BGP_OPEN] = (S.OPENCONFIRM, ("keepalive",), (StateChanged,))
        return out
    out[In.TCP_CONNECTION_FAILS] = (S.IDLE, NOTHING, DOWN)
    out[In.KEEPALIVE_TIMER_EXPIRES] = (state, ("keepalive",), NO_EVENTS)
    if state is S.OPENCONFIRM:
        out[In.KEEPALIVE_MSG] = (S.ESTABLISHED, NOTHING, (SessionUp, StateChanged))
        return out
    out[In.KEEPALIVE_MSG] = (S.ESTABLISHED, NOTHING, NO_EVENTS)
    out[In.UPDATE_MSG] = (S.ESTABLISHED, NOTHING, (UpdateReceived,))
    out[In.UPDATE_MSG_ERR] = (S.IDLE, ("notification 3/1",), DOWN)
    out[In.MAX_PREFIX_EXCEEDED] = (S.IDLE, ("notification 6/1",), DOWN)
    out[In.ROUTE_REFRESH_MSG] = (S.ESTABLISHED, NOTHING, (RouteRefreshRequested,))
    out[In.ROUTE_REFRESH_MSG_ERR] = (S.IDLE, ("notification 7/1",), DOWN)
    return out


EXPECTED: dict[tuple[State, Input], Outcome] = {
    (state, inp): outcome
    for state, table in (
        (S.IDLE, _idle()),
        (S.CONNECT, _unconnected(S.CONNECT)),
        (S.ACTIVE, _unconnected(S.ACTIVE)),
        (S.OPENSENT, _connected(S.OPENSENT)),
        (S.OPENCONFIRM, _connected(S.OPENCONFIRM)),
        (S.ESTABLISHED, _connected(S.ESTABLISHED)),
    )
    for inp, outcome in table.items()
}


def _describe(data: bytes) -> tuple[str, ...]:
    out = []
    for m in split_messages(data):
        if isinstance(m, Notification):
            out.append(f"notification {m.code}/{m.subcode}")
        else:
            out.append(type(m).__name__.lower())
    return tuple(out)


def test_every_input_is_producible_and_every_pair_expected() -> None:
    assert set(APPLY) == set(Input)
    assert len(EXPECTED) == len(State) * len(Input)


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
@pytest.mark.parametrize("inp", list(Input), ids=lambda i: i.value)
def test_state_input_pair(state: State, inp: Input) -> None:
    s = session_in(state)
    s.data_to_send()
    while s.next_event():
        pass
    APPLY[inp](s, 1.0)
    sent = _describe(s.data_to_send())
    events = []
    while (ev := s.next_event()) is not None:
        events.append(type(ev))
    want_state, want_sent, want_events = EXPECTED[(state, inp)]
    assert (s.state, sent, tuple(events)) == (want_state, want_sent, want_events)
    if s.state is State.IDLE and state is not State.IDLE and inp is not Input.MANUAL_STOP:
        if inp is Input.OPEN_COLLISION_DUMP and state in FSM_SUBCODE:
            assert Timer.IDLE_HOLD not in s.deadlines  # the other connection carries the peering
        elif inp is Input.BFD_DOWN:
            assert not s.deadlines  # held Idle until BFD is Up again (RFC 5882)
        else:
            assert Timer.IDLE_HOLD in s.deadlines  # it comes back by itself after the idle hold time


def test_stop_does_not_restart_and_passive_start_does_not_connect() -> None:
    s = session_in(State.ESTABLISHED)
    s.stop(2.0, "maintenance")
    assert s.state is State.IDLE and not s.deadlines
    p = Session(replace(config(), peer=replace(config().peer, passive=True)))
    p.start(0.0)
    assert p.state is State.ACTIVE and p.get_timer() is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list(Input)), max_size=25), st.sampled_from(list(State)))
def test_random_input_sequences_never_crash(inputs: list[Input], start: State) -> None:
    s = session_in(start)
    now = 1.0
    for inp in inputs:
        APPLY[inp](s, now)
        now += 1.0
        for m in split_messages(s.data_to_send()):
            # Whatever happens, only well-formed BGP goes out, and NOTIFICATIONs end the connection.
            if isinstance(m, Notification):
                assert s.state in (State.IDLE, State.ACTIVE)
        while s.next_event():
            pass
        if s.state is State.IDLE:
            assert Timer.HOLD not in s.deadlines and Timer.KEEPALIVE not in s.deadlines
        if s.state is State.ESTABLISHED:
            assert s.params is not None
