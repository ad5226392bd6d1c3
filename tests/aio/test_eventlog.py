"""Operator log lines: one per event, in plain words, at the expected level; failures rate-limited."""

from __future__ import annotations

import logging

import pytest

from bgpsvc.aio.eventlog import FAILURE_QUIET, EventLog, describe
from bgpsvc.fsm import (
    ConnectionFailed,
    DownKind,
    DownReason,
    Peer,
    SessionConfig,
    SessionDown,
    StaleRoutesKept,
)
from bgpsvc.wire import Notification


def peer() -> Peer:
    return Peer(SessionConfig.build(64512, 64500, "192.0.2.1", address="192.0.2.254", name="tor-1"))


@pytest.mark.parametrize(
    ("reason", "level", "words"),
    [
        (DownReason(DownKind.HOLD_TIMER_EXPIRED, Notification(4, 0)), logging.WARNING, "hold timer expired"),
        (
            DownReason(DownKind.NOTIFICATION_RECEIVED, Notification.shutdown("maintenance")),
            logging.INFO,
            "Administrative Shutdown: 'maintenance'",
        ),
        (DownReason(DownKind.NOTIFICATION_RECEIVED, Notification(3, 8)), logging.WARNING, "Invalid Next Hop"),
        (DownReason(DownKind.ADMIN_STOP), logging.INFO, "admin stop"),
    ],
)
def test_a_session_leaving_established_says_why_at_the_right_level(
    reason: DownReason, level: int, words: str
) -> None:
    line = describe(peer(), SessionDown(reason, was_established=True))
    assert line is not None
    got_level, text, fields = line
    assert got_level == level
    assert text.startswith("peer tor-1 (192.0.2.254) AS 64500: left Established: ") and words in text
    assert fields["reason"] == reason.kind.value and "(" not in fields["reason"]  # words, not reprs


def test_graceful_restart_phases_are_one_line_each() -> None:
    line = describe(peer(), StaleRoutesKept(12, 120))
    assert line is not None and line[0] == logging.INFO and "12 routes kept, stale, for 120 s" in line[1]


def test_connection_failures_are_rate_limited_per_peer(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = EventLog(clock=lambda: now[0])
    p = peer()
    with caplog.at_level(logging.INFO, logger="bgpsvc.peer"):
        for _ in range(5):
            log(p, ConnectionFailed("connection refused"))
            now[0] += 1.0
        now[0] += FAILURE_QUIET
        log(p, ConnectionFailed("connection refused"))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].endswith("cannot connect to 192.0.2.254 port 179: connection refused")
    assert "(4 more failures in the last 60 s)" in lines[1]
    assert caplog.records[1].fields["repeated"] == 4  # type: ignore[attr-defined]
