"""Every (state, input) pair of the FSM ends in a legal state, or in an FSM-error NOTIFICATION (RFC 6608)."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.fsm import FSM_SUBCODES, TRANSITIONS, Input, Session, SessionConfig, State, Timer
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
UPDATE = pack_updates(
    (Origin(0), AsPath.sequence(64513), NextHop(ipaddress.IPv4Address("192.0.2.2"))),
    [Prefix.host("198.51.100.1")],
)[0]
BAD_UPDATE = b"\xff" * 16 + b"\x00\x17\x02" + b"\x00\x09\x00\x00"  # withdrawn length overruns: session reset
BAD_OPEN = b"\xff" * 16 + b"\x00\x1d\x01" + bytes.fromhex("03fdea005ac000020200")  # version 3
BAD_RR = b"\xff" * 16 + b"\x00\x18\x05" + bytes.fromhex("0001000100")  # 24 octets
BAD_HEADER = b"\x00" * 19


def config() -> SessionConfig:
    return SessionConfig(64512, 64513, ipaddress.IPv4Address("192.0.2.1"), rng=random.Random(7))


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


def _fire(timer: Timer) -> Callable[[Session, float], None]:
    def fire(s: Session, now: float) -> None:
        s.deadlines[timer] = now
        s.handle_timer(now)

    return fire


def _data(data: bytes) -> Callable[[Session, float], None]:
    return lambda s, now: s.receive_data(data, now)


#: How each RFC event is produced through the public API.
APPLY: dict[Input, Callable[[Session, float], None]] = {
    Input.MANUAL_START: lambda s, now: s.start(now),
    Input.MANUAL_STOP: lambda s, now: s.stop(now, "bye"),
    Input.AUTOMATIC_START: lambda s, now: s._handle(Input.AUTOMATIC_START, now),
    Input.CONNECT_RETRY_TIMER_EXPIRES: _fire(Timer.CONNECT_RETRY),
    Input.HOLD_TIMER_EXPIRES: _fire(Timer.HOLD),
    Input.KEEPALIVE_TIMER_EXPIRES: _fire(Timer.KEEPALIVE),
    Input.IDLE_HOLD_TIMER_EXPIRES: _fire(Timer.IDLE_HOLD),
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
    Input.ROUTE_REFRESH_MSG: _data(encode(RouteRefresh(1, 1))),
    Input.ROUTE_REFRESH_MSG_ERR: _data(BAD_RR),
}

CONNECTED = (State.OPENSENT, State.OPENCONFIRM, State.ESTABLISHED)


def test_every_input_is_producible() -> None:
    assert set(APPLY) == set(Input)


@pytest.mark.parametrize("state", list(State), ids=lambda s: s.value)
@pytest.mark.parametrize("inp", list(Input), ids=lambda i: i.value)
def test_state_input_pair(state: State, inp: Input) -> None:
    s = session_in(state)
    s.data_to_send()
    while s.next_event():
        pass
    APPLY[inp](s, 1.0)
    sent = split_messages(s.data_to_send())
    entry = TRANSITIONS.get((state, inp))
    message_without_connection = state not in CONNECTED and inp.value.endswith(("Msg", "Err", "BGPOpen"))
    if message_without_connection and inp is not Input.BGP_OPEN:
        # No TCP connection yet: the bytes cannot arrive; nothing changes.
        assert s.state is state
        return
    if entry is None and state is not State.IDLE and not (state not in CONNECTED and inp is Input.BGP_OPEN):
        # Not in the table: FSM error. Connected states send code 5 with the RFC 6608 subcode.
        assert s.state is State.IDLE
        if state in CONNECTED:
            assert sent[-1] == Notification(5, FSM_SUBCODES[state])
        return
    if entry is not None and entry[1] is not None:
        assert s.state is entry[1], f"{state} + {inp} -> {s.state}, table says {entry[1]}"
    assert s.state in State


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
