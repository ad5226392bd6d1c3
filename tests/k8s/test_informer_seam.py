"""The informer loop through its ListerWatcher seam: scripted pages, events, 410s and broken streams.

No HTTP, no thread, no real time: a scripted ListerWatcher answers each call in turn, a fake clock
advances only when a script says so or when the informer sleeps, and the informer runs in the test's
own thread (``run()``) until the script is used up.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bgpsvc.k8s.listwatch import ApiError, Expired, Page
from bgpsvc.k8s.reflector import HEALTHY_WATCH, Informer
from bgpsvc.k8s.views import ServiceView, service_from_dict

#: A watch script: event dicts are yielded, floats advance the clock (the stream stays open, quiet),
#: an exception breaks the stream; running off the end is the server ending it cleanly.
WatchScript = list[Mapping[str, Any] | float | BaseException]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Scripted:
    """A ListerWatcher that answers from scripts and logs every call; stops the informer when done."""

    clock: Clock
    lists: deque[Page | BaseException] = field(default_factory=deque)
    watches: deque[WatchScript | BaseException] = field(default_factory=deque)
    log: list[tuple[Any, ...]] = field(default_factory=list)
    informer: Informer[Any] | None = None
    resource: str = "services"

    def list(self, limit: int, continue_token: str | None) -> Page:
        self.log.append(("list", limit, continue_token))
        answer = self._next(self.lists)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, Page)
        return answer

    def watch(self, resource_version: str | None, timeout: int) -> Generator[Mapping[str, Any], None, None]:
        self.log.append(("watch", resource_version))
        answer = self._next(self.watches)
        if isinstance(answer, BaseException):
            raise answer
        return self._stream(answer)

    def _stream(self, script: WatchScript) -> Generator[Mapping[str, Any], None, None]:
        for step in script:
            if isinstance(step, BaseException):
                self.log.append(("break", type(step).__name__))
                raise step
            if isinstance(step, float):
                self.clock.now += step
            else:
                yield step
        self.log.append(("end",))

    def _next(self, queue: deque[Any]) -> Any:
        if not queue:
            assert self.informer is not None
            self.informer.stop()  # the script is used up: end run()
            raise InterruptedError("closed")
        return queue.popleft()

    def close(self) -> None:
        self.log.append(("close",))

    def sleep(self, delay: float) -> None:
        self.log.append(("sleep", delay))
        self.clock.now += delay


def svc(name: str, rv: int) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "default", "name": name, "resourceVersion": str(rv)},
        "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"]},
    }


def ev(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": kind, "object": obj}


def informer(lw: Scripted, **kwargs: Any) -> Informer[ServiceView]:
    inf: Informer[ServiceView] = Informer(
        lw, service_from_dict, rng=random.Random(1), clock=lw.clock, sleep=lw.sleep, **kwargs
    )
    lw.informer = inf
    return inf


def sleeps(log: list[tuple[Any, ...]]) -> list[float]:
    return [entry[1] for entry in log if entry[0] == "sleep"]


def after(log: list[tuple[Any, ...]], entry: tuple[Any, ...]) -> tuple[Any, ...]:
    """The call that followed the last occurrence of ``entry``."""
    i = len(log) - 1 - log[::-1].index(entry)
    return log[i + 1]


OUTAGE = [ConnectionRefusedError("API server down")] * 5


def test_a_quiet_watch_that_stays_up_ends_the_failure_streak() -> None:
    """After an outage, a watch open longer than HEALTHY_WATCH and then cut reconnects at once."""
    lw = Scripted(Clock())
    lw.lists.append(Page((svc("a", 5),), "10"))
    lw.watches.extend([*OUTAGE, [60.0, ConnectionResetError("dropped")], []])
    inf = informer(lw)
    inf.run()
    # The outage backed off, growing: 0.8 s, 1.6 s, ... (jittered to [d/2, d]).
    outage = sleeps(lw.log)
    assert len(outage) == 5
    for n, d in enumerate(outage):
        assert 0.8 * 2**n / 2 <= d <= 0.8 * 2**n
    # The watch stayed open a quiet minute, then was cut: watch again at once from the same version.
    assert after(lw.log, ("break", "ConnectionResetError")) == ("watch", "10")
    assert inf.counters()["failures"] == 0 and inf.counters()["backoffs"] == 5
    assert inf.healthy and inf.relists == 0 and set(inf.snapshot()) == {("default", "a")}


def test_streams_cut_soon_after_opening_keep_backing_off() -> None:
    """A server (or proxy) that accepts watches and drops them at once is not hammered."""
    lw = Scripted(Clock())
    lw.lists.append(Page((), "10"))
    lw.watches.extend([[0.1, ConnectionResetError("dropped")]] * 5)
    inf = informer(lw)
    inf.run()
    delays = sleeps(lw.log)
    assert lw.log[1:4] == [("watch", "10"), ("break", "ConnectionResetError"), ("watch", "10")]
    # The first cut is retried at once (client-go does too); the next ones back off exponentially.
    assert len(delays) == 4 and all(0.8 * 2**n / 2 <= d <= 0.8 * 2**n for n, d in enumerate(delays, 1))
    assert inf.counters()["failures"] == 5


def test_an_event_ends_the_streak_even_on_a_short_watch() -> None:
    lw = Scripted(Clock())
    lw.lists.append(Page((), "10"))
    lw.watches.extend([*OUTAGE, [ev("ADDED", svc("b", 11)), ConnectionResetError("dropped")], []])
    inf = informer(lw)
    inf.run()
    assert after(lw.log, ("break", "ConnectionResetError")) == ("watch", "11")
    assert set(inf.snapshot()) == {("default", "b")} and inf.resource_version == "11"


def test_the_healthy_period_is_a_setting() -> None:
    lw = Scripted(Clock())
    lw.lists.append(Page((), "10"))
    lw.watches.extend([*OUTAGE, [HEALTHY_WATCH + 1, ConnectionResetError("dropped")], []])
    inf = informer(lw, healthy_watch=HEALTHY_WATCH + 2)
    inf.run()
    assert after(lw.log, ("break", "ConnectionResetError"))[0] == "sleep"  # not up long enough


def test_pages_follow_the_continue_token_and_events_update_the_store() -> None:
    lw = Scripted(Clock())
    lw.lists.extend([Page((svc("a", 1), svc("b", 2)), "10", "t1"), Page((svc("c", 3),), "10")])
    lw.watches.append(
        [
            ev("ADDED", svc("d", 11)),
            ev("DELETED", svc("a", 12)),
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}},
        ]
    )
    changes: list[int] = []
    inf = informer(lw, page_size=2, on_change=lambda: changes.append(1))
    inf.run()
    assert lw.log[:3] == [("list", 2, None), ("list", 2, "t1"), ("watch", "10")]
    assert after(lw.log, ("end",)) == ("watch", "15")  # a clean end resumes from the bookmark, at once
    assert {name for _, name in inf.snapshot()} == {"b", "c", "d"}
    assert inf.synced and len(changes) == 3  # the list, ADDED d, DELETED a
    assert inf.counters() == {
        "lists": 2,
        "watches": 1,  # opened; the second call found the script used up
        "events": 2,
        "bookmarks": 1,
        "backoffs": 0,
        "relists": 0,
        "failures": 0,
    }


def test_410_relists_at_once_and_a_410_streak_backs_off() -> None:
    lw = Scripted(Clock())
    lw.lists.extend([Page((svc("a", 1),), "10"), Page((svc("b", 2),), "20"), Page((), "30")])
    gone = ev("ERROR", {"kind": "Status", "code": 410, "message": "too old resource version"})
    lw.watches.extend([[gone], Expired("HTTP 410")])
    inf = informer(lw)
    inf.run()
    assert after(lw.log, ("watch", "10")) == ("list", 500, None)  # first 410: at once
    assert after(lw.log, ("watch", "20"))[0] == "sleep"  # the fresh list's version is gone too
    assert inf.relists == 2 and set(inf.snapshot()) == set()


def test_expired_continue_token_falls_back_to_one_unpaginated_list() -> None:
    lw = Scripted(Clock())
    lw.lists.extend(
        [Page((svc("a", 1),), "10", "t1"), Expired("continue"), Page((svc("a", 1), svc("b", 2)), "12")]
    )
    inf = informer(lw, page_size=1)
    inf.run()
    assert lw.log[:4] == [("list", 1, None), ("list", 1, "t1"), ("list", 0, None), ("watch", "12")]
    assert {name for _, name in inf.snapshot()} == {"a", "b"}


@pytest.mark.parametrize(
    "bad",
    [
        ev("ERROR", {"kind": "Status", "code": 500, "reason": "InternalError"}),
        {"type": "ADDED", "object": "not an object"},
    ],
)
def test_a_watch_error_relists_after_a_backoff(bad: Mapping[str, Any]) -> None:
    lw = Scripted(Clock())
    lw.lists.extend([Page((svc("a", 1),), "10"), Page((svc("a", 1),), "11")])
    lw.watches.append([bad])
    inf = informer(lw)
    inf.run()
    assert lw.log[2][0] == "sleep" and lw.log[3] == ("list", 500, None)
    assert inf.relists == 1 and "watch error" in (inf.last_error or "")


def test_store_survives_an_outage() -> None:
    lw = Scripted(Clock())
    lw.lists.append(Page((svc("a", 1),), "10"))
    lw.watches.extend(OUTAGE)
    inf = informer(lw)
    inf.run()
    assert not inf.healthy and inf.synced and set(inf.snapshot()) == {("default", "a")}
    assert "ConnectionRefusedError" in (inf.last_error or "")


def test_an_error_status_is_reported_and_retried_after_a_backoff() -> None:
    lw = Scripted(Clock())
    lw.lists.extend([ApiError(403, "Forbidden"), Page((svc("a", 1),), "10")])
    inf = informer(lw)
    inf.run()
    assert lw.log[1][0] == "sleep" and lw.log[2] == ("list", 500, None)
    assert inf.last_error == "HTTP 403 Forbidden" and inf.synced and inf.relists == 0


# -- property: whatever came before, a watch that stayed up and then broke is retried at once ----------

failure = st.one_of(
    st.just(ConnectionRefusedError("refused")),
    st.floats(0.0, HEALTHY_WATCH * 0.99).map(lambda t: [t, ConnectionResetError("cut")]),
    st.just(Expired("HTTP 410")),
)


@settings(max_examples=200, deadline=None)
# (+1 ms: the fake clock adds floats, and exactly HEALTHY_WATCH may come out a hair short)
@given(st.lists(failure, max_size=12), st.floats(HEALTHY_WATCH + 0.001, 3600.0), st.integers(0, 2**32))
def test_after_any_history_a_healthy_watch_resets_the_backoff(
    history: list[Any], up: float, seed: int
) -> None:
    lw = Scripted(Clock())
    lw.lists.extend([Page((), str(10 + i)) for i in range(len(history) + 1)])
    lw.watches.extend([*history, [up, ConnectionResetError("dropped")], []])
    inf: Informer[ServiceView] = Informer(
        lw, service_from_dict, rng=random.Random(seed), clock=lw.clock, sleep=lw.sleep
    )
    lw.informer = inf
    inf.run()
    assert after(lw.log, ("break", "ConnectionResetError"))[0] == "watch"
    assert all(0 < d <= inf.backoff_max for d in sleeps(lw.log))
