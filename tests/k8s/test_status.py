"""Status back into the cluster, the sans-IO parts: the write coalescer's bound, the node status builder
(states and since when; nothing changes while nothing happens) and objects' condition patches."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from bgpsvc.fsm import PeerStatus
from bgpsvc.k8s.nodestatus import NodeStatusBuilder, advance, rfc3339
from bgpsvc.k8s.resources import Condition, ObjectStatus
from bgpsvc.k8s.statuswriter import Coalescer, Current, condition_body, stale

INTERVAL = 5.0


@given(st.lists(st.tuples(st.floats(0, 3, allow_nan=False), st.integers(0, 3), st.booleans()), max_size=60))
def test_writes_are_at_least_an_interval_apart_and_the_last_value_is_written(
    steps: list[tuple[float, int, bool]],
) -> None:
    """Offer values at arbitrary times; writes may fail. Writes stay ``interval`` apart, a value equal
    to the last one written is never written again, and once offers stop the latest value gets written."""
    c, now, writes, latest = Coalescer(INTERVAL), 0.0, [], None
    for dt, value, ok in steps:
        now += dt
        c.offer(value)
        latest = value
        v = c.take(now)
        if v is not None:
            assert v == value
            assert v != c.written  # an unchanged status is never written
            writes.append(now)
            c.done(v, ok)
    assert all(b - a >= INTERVAL for a, b in itertools.pairwise(writes))
    for _ in range(10):  # quiet afterwards: the pending value goes out within an interval, then nothing
        deadline = c.deadline()
        if deadline is None:
            break
        now = max(now, deadline)
        v = c.take(now)
        assert v is not None
        c.done(v, True)
    assert latest is None or c.written == latest
    assert c.deadline() is None


def test_a_change_after_quiet_is_written_at_once_a_burst_once_at_the_end() -> None:
    c = Coalescer(INTERVAL)
    c.offer("a")
    assert c.take(100.0) == "a"
    c.done("a", True)
    for t, v in ((100.5, "b"), (101.0, "c"), (102.0, "d")):
        c.offer(v)
        assert c.take(t) is None
    assert c.deadline() == 105.0 and c.take(105.0) == "d"
    c.done("d", True)
    c.offer("d")
    assert c.deadline() is None  # unchanged


def status(name: str, state: str, uptime: float | None = None, **kw: object) -> PeerStatus:
    base = PeerStatus(
        name=name, address="192.0.2.1", peer_as=64500, local_as=64512, state=state, uptime=uptime,
        last_down=None, prefixes_sent=0, prefixes_received={}, messages_sent=0, messages_received=0,
        updates_sent=0, updates_received=0, hold_time=None, families=(), graceful_shutdown=False,
        unroutable=0,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def test_since_is_when_the_state_began_and_does_not_move() -> None:
    s = advance({}, [status("a", "Active")], 1000.0)
    assert s["a"].since == 1000.0
    s = advance(s, [status("a", "Active")], 1030.0)
    assert s["a"].since == 1000.0
    s = advance(s, [status("a", "Established", uptime=2.0)], 1040.0)
    assert (s["a"].state, s["a"].since) == ("Established", 1038.0)
    s = advance(s, [status("a", "Established", uptime=62.0)], 1100.0)
    assert s["a"].since == 1038.0
    assert advance(s, [], 1200.0) == {}


def test_the_node_status_changes_only_when_something_happens() -> None:
    b = NodeStatusBuilder("node-1")
    up = status(
        "tor-a",
        "Established",
        uptime=5.0,
        hold_time=90,
        families=("ipv4-unicast",),
        prefixes_received={"ipv4-unicast": 2},
        prefixes_by_class={"ipv4-unicast": 3},
    )
    kw = {"local_as": 64512, "sources": {"tor-a": "BGPPeer/tor-a"}, "problems": ()}
    first = b.build("192.0.2.11", peers=[up], now=1000.0, **kw)  # type: ignore[arg-type]
    (peer,) = first["peers"]
    assert peer["state"] == "Established" and peer["since"] == rfc3339(995.0)
    assert peer["routes"] == [{"family": "ipv4-unicast", "advertised": 3, "received": 2}]
    assert peer["source"] == "BGPPeer/tor-a" and peer["holdTime"] == 90
    later = b.build("192.0.2.11", peers=[replace(up, uptime=65.0)], now=1060.0, **kw)  # type: ignore[arg-type]
    assert later == first  # time passing is not a change: nothing to write
    down = replace(up, state="Active", uptime=None, last_down="hold timer expired", flaps=1)
    flapped = b.build("192.0.2.11", peers=[down], now=1070.0, **kw)  # type: ignore[arg-type]
    assert flapped["peers"][0]["since"] == rfc3339(1070.0)
    assert flapped["peers"][0]["lastDownReason"] == "hold timer expired"
    bad = b.build(
        "192.0.2.11", peers=[down], now=1080.0, local_as=64512, sources={}, problems=("BGPPeer x: no")
    )
    assert bad["conditions"][0]["status"] == "False" and bad["conditions"][0][
        "lastTransitionTime"
    ] == rfc3339(1080.0)
    assert bad["peers"][0]["source"] == "file"


def test_condition_patches_keep_transition_times_and_say_the_generation() -> None:
    ok = Condition("Accepted", "True", "Accepted")
    cur = Current(3, ObjectStatus(2, (ok,), (("Accepted", "2024-01-01T00:00:00Z"),)))
    assert stale((ok,), cur)  # generation 3 not observed yet
    body = condition_body(
        (ok, Condition("NodesSelected", "False", "NoMatchingNode", "x")), cur, "2024-06-01T00:00:00Z"
    )
    accepted, selected = body["status"]["conditions"]
    assert body["status"]["observedGeneration"] == 3 and accepted["observedGeneration"] == 3
    assert accepted["lastTransitionTime"] == "2024-01-01T00:00:00Z"  # unchanged status: time kept
    assert selected["lastTransitionTime"] == "2024-06-01T00:00:00Z"
    assert not stale((ok,), Current(2, cur.status))
    assert stale((replace(ok, message="other"),), Current(2, cur.status))
