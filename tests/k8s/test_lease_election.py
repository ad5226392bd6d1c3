"""The sans-IO Lease election (bgpsvc/k8s/lease.py) against a model of the API server's optimistic
concurrency: a write names the resourceVersion it read and fails with 409 when the object has moved on.

The safety property is client-go's: two candidates never both believe they lead with a fresh renewal,
whatever the order of their reads, writes, failures and pauses, because a candidate takes over only
after seeing the same record for ``lease_duration`` and a holder stops at ``renew_deadline`` earlier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.k8s.lease import Election, Record, Role, Write, micro_time

DURATION, DEADLINE = 15.0, 10.0


@dataclass
class Server:
    """One Lease: its record and resourceVersion; ``down`` makes every request fail."""

    record: Record | None = None
    rv: int = 0
    down: bool = False
    writes: list[str] = field(default_factory=list)

    def read(self) -> tuple[Record | None, str | None] | None:
        if self.down:
            return None
        return (self.record, str(self.rv)) if self.record is not None else (None, None)

    def write(self, w: Write) -> str | None:
        if self.down:
            return None
        if w.resource_version is None:
            if self.record is not None:
                return None  # 409 AlreadyExists
        elif self.record is None or w.resource_version != str(self.rv):
            return None  # 409 Conflict
        self.record, self.rv = w.record, self.rv + 1
        self.writes.append(w.record.holder)
        return str(self.rv)


def step(e: Election, server: Server, now: float) -> None:
    """``Election.step`` (what ``LeaseElector.step`` runs) against the model server at ``now``."""
    e.step(lambda: now, f"t{now}", server.read, server.write)


def fresh_leaders(es: list[Election], now: float) -> list[str]:
    """Candidates that lead and would still think so if they looked at the clock now."""
    return [e.identity for e in es if e.role is Role.LEADING and now - e.renewed_at < e.renew_deadline]


def test_the_first_candidate_creates_the_lease_and_renews_it() -> None:
    server, a = Server(), Election("a", DURATION, DEADLINE)
    step(a, server, 0.0)
    assert a.role is Role.LEADING and server.record is not None
    assert server.record.holder == "a" and server.record.transitions == 0
    acquired = server.record.acquire_time
    step(a, server, 5.0)
    assert server.record.renew_time == "t5.0" and server.record.acquire_time == acquired
    assert server.writes == ["a", "a"]


def test_a_follower_waits_a_full_lease_duration_by_its_own_clock_then_takes_over() -> None:
    server, a, b = Server(), Election("a", DURATION, DEADLINE), Election("b", DURATION, DEADLINE)
    step(a, server, 0.0)
    step(b, server, 1.0)  # sees a's record at 1.0
    assert b.role is Role.FOLLOWING
    # a dies. b keeps seeing the same record: it may take over at 1.0 + 15, not before.
    step(b, server, 15.9)
    assert b.role is Role.FOLLOWING and server.record is not None and server.record.holder == "a"
    step(b, server, 16.0)
    assert b.role is Role.LEADING and server.record is not None
    assert server.record.holder == "b" and server.record.transitions == 1


def test_a_holder_that_cannot_renew_stops_before_anyone_may_take_over() -> None:
    server, a = Server(), Election("a", DURATION, DEADLINE)
    step(a, server, 0.0)
    server.down = True
    step(a, server, 5.0)
    assert a.role is Role.LEADING
    step(a, server, 10.0)
    assert a.role is Role.FOLLOWING  # 10 s without a renewal, 5 s before the Lease may expire


def test_a_released_lease_is_taken_at_once_and_a_lost_race_is_a_follower() -> None:
    server = Server()
    a, b, c = (Election(n, DURATION, DEADLINE) for n in "abc")
    step(a, server, 0.0)
    step(b, server, 1.0)
    step(c, server, 1.0)
    release = a.released()
    assert release is not None and release.record.holder == "" and release.record.duration == 1.0
    assert server.write(release) is not None
    a.role = Role.FOLLOWING
    # b and c both read the released record; b writes first, c's write names a stale resourceVersion.
    b.observe(*server.read() or (None, None), 2.0)  # type: ignore[misc]
    c.observe(*server.read() or (None, None), 2.0)  # type: ignore[misc]
    wb, wc = b.want(2.0, "t2"), c.want(2.0, "t2")
    assert wb is not None and wc is not None
    b.wrote(wb, server.write(wb), 2.0)
    c.wrote(wc, server.write(wc), 2.0)
    assert (b.role, c.role) == (Role.LEADING, Role.FOLLOWING)
    assert server.record is not None and server.record.holder == "b"


def test_a_holder_that_reads_another_holder_stops_at_once() -> None:
    a = Election("a", DURATION, DEADLINE)
    a.wrote(Write(Record("a"), None), "1", 0.0)
    assert a.role is Role.LEADING
    a.observe(Record("b"), "2", 1.0)
    assert a.role is Role.FOLLOWING


def test_a_refused_renewal_makes_the_holder_read_and_step_down_before_its_deadline() -> None:
    server, a = Server(), Election("a", DURATION, DEADLINE)
    step(a, server, 0.0)
    # The record moves on under a (an operator's edit, a candidate with a skewed view): b holds it now.
    server.record, server.rv = Record("b", DURATION, "t4", "t4", 1), server.rv + 1
    step(a, server, 5.0)  # the renewal names a stale resourceVersion: 409
    assert a.role is Role.LEADING and a.need_read
    step(a, server, 6.0)  # reads, sees b: stops now, not at its deadline (10.0)
    assert a.role is Role.FOLLOWING
    assert server.record is not None and server.record.holder == "b"


def test_bad_timings_are_refused() -> None:
    with pytest.raises(ValueError, match="renew_deadline"):
        Election("a", lease_duration=10.0, renew_deadline=10.0)


def test_a_lease_with_odd_fields_reads_as_empty() -> None:
    rec = Record.from_lease({"spec": {"holderIdentity": 7, "leaseDurationSeconds": True, "renewTime": None}})
    assert rec == Record("", DURATION, "", "", 0)
    assert Record.from_lease({"spec": "x"}) == Record()
    assert Record.from_lease({}).spec()["holderIdentity"] == ""


# One operation of the random schedule: (candidate, what, pause before it in seconds).
Op = tuple[int, str, float]
ops = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.sampled_from(["step", "step", "step", "release", "down", "up"]),
        st.floats(0.0, 8.0, allow_nan=False),
    ),
    max_size=80,
)


@settings(max_examples=300, deadline=None)
@given(ops)
def test_never_two_fresh_leaders_whatever_the_schedule(schedule: list[Op]) -> None:
    server = Server()
    es = [Election(n, DURATION, DEADLINE) for n in "abc"]
    now = 0.0
    for who, what, pause in schedule:
        now += pause
        e = es[who]
        if what == "step":
            step(e, server, now)
        elif what == "release":
            w = e.released()
            if w is not None:
                server.write(w)  # a release that fails leaves the Lease to expire
                e.role = Role.FOLLOWING
        else:
            server.down = what == "down"
        assert len(fresh_leaders(es, now)) <= 1, (now, [(x.identity, x.role, x.renewed_at) for x in es])
        if server.record is not None and server.record.holder:
            # Whoever leads holds the Lease.
            assert set(fresh_leaders(es, now)) <= {server.record.holder}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2), min_size=1, max_size=30))
def test_someone_leads_once_the_server_answers_and_time_passes(order: list[int]) -> None:
    server = Server()
    es = [Election(n, DURATION, DEADLINE) for n in "abc"]
    now = 0.0
    for who in order:
        now += 1.0
        step(es[who], server, now)
    # Whatever happened, a lease that is not renewed expires: after it, the next candidate takes it.
    for e in es:
        step(e, server, now + 1.0)
    leaders = fresh_leaders(es, now + 1.0)
    if not leaders:
        for e in es:
            step(e, server, now + 1.0 + DURATION)
        leaders = fresh_leaders(es, now + 1.0 + DURATION)
    assert len(leaders) == 1


def test_micro_time_always_has_six_fraction_digits() -> None:
    assert micro_time(datetime(2026, 12, 2, 17, 0, 5, 0, UTC)) == "2026-12-02T17:00:05.000001Z"
    assert micro_time(datetime(2026, 12, 2, 17, 0, 5, 123456, UTC)) == "2026-12-02T17:00:05.123456Z"
