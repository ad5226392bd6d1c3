"""One log line per peer event, in plain words (FRR's ``%ADJCHANGE``, BIRD's protocol lines are the bar).

Each line also carries structured fields (``extra={"fields": {...}}``) that the JSON log format emits
as keys: ``peer``, ``event`` and what the event says (state, reason, NOTIFICATION code and subcode by
name, RFC 9003 text, counts). Connection failures are rate-limited per peer: the first one is logged,
repeats within ``FAILURE_QUIET`` seconds are counted and reported with the next line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..bfd import BfdEvent, ChangeReason
from ..bfd import State as BfdState
from ..fsm import (
    AnyPeerEvent,
    CloseRequested,
    ConnectionFailed,
    DownKind,
    EndOfRibReceived,
    EndOfRibSent,
    MaxPrefixExceeded,
    Peer,
    RouteRefreshRequested,
    SessionDown,
    SessionUp,
    StaleRoutesFlushed,
    StaleRoutesKept,
    StateChanged,
    UpdateReceived,
    notification_name,
)

log = logging.getLogger("bgpsvc.peer")
#: Seconds during which repeated connection failures of one peer are counted, not logged.
FAILURE_QUIET = 60.0
_Line = tuple[int, str, dict[str, Any]]


def _who(peer: Peer) -> str:
    p = peer.config.peer
    return f"peer {p.label}" + (f" ({p.address})" if p.name else "") + f" AS {p.peer_as}"


def _up(peer: Peer, ev: SessionUp) -> _Line:
    params = ev.params
    fams = " ".join(str(f) for f in params.families) or "none"
    text = f"{_who(peer)}: session Established (hold time {params.hold_time} s, families {fams})"
    return logging.INFO, text, {"state": "Established", "hold_time": params.hold_time, "families": fams}


def _down(peer: Peer, ev: SessionDown) -> _Line:
    reason = ev.reason
    fields: dict[str, Any] = {"reason": reason.kind.value, "was_established": ev.was_established}
    note = reason.notification
    if note is not None:
        fields["notification"] = notification_name(note)
        fields["code"], fields["subcode"] = note.code, note.subcode
        if note.shutdown_message is not None:
            fields["shutdown_message"] = note.shutdown_message
    if reason.detail:
        fields["detail"] = reason.detail
    where = "left Established" if ev.was_established else "session attempt failed"
    # An administrative stop, ours or the peer's (Cease: Administrative Shutdown, Peer De-configured,
    # Administrative Reset), is planned work, not a fault.
    planned = reason.kind is DownKind.ADMIN_STOP or (
        reason.kind is DownKind.NOTIFICATION_RECEIVED
        and note is not None
        and note.code == 6
        and note.subcode in (2, 3, 4)
    )
    level = logging.INFO if planned else logging.WARNING
    return level, f"{_who(peer)}: {where}: {reason}", fields


def _update(peer: Peer, ev: UpdateReceived) -> _Line | None:
    if ev.looped:
        return logging.DEBUG, f"{_who(peer)}: UPDATE carries our AS (loop, RFC 4271 §9.1.2): ignored", {}
    if not ev.update.errors:
        return None
    parts = [err.summary for err in ev.update.errors]
    prefixes = len(ev.update.announced()) + len(ev.update.withdrawals())
    text = f"{_who(peer)}: malformed UPDATE handled per RFC 7606, {prefixes} prefixes: " + "; ".join(parts)
    return logging.WARNING, text, {"rfc7606": parts, "prefixes": prefixes}


def describe(peer: Peer, ev: AnyPeerEvent) -> _Line | None:
    """(level, message, fields) for one event, or None when it is not worth a line."""
    who = _who(peer)
    if isinstance(ev, SessionUp):
        return _up(peer, ev)
    if isinstance(ev, SessionDown):
        return _down(peer, ev)
    if isinstance(ev, UpdateReceived):
        return _update(peer, ev)
    if isinstance(ev, StateChanged):
        return (
            logging.DEBUG,
            f"{who}: {ev.old.value} -> {ev.new.value}",
            {"old": ev.old.value, "state": ev.new.value},
        )
    if isinstance(ev, MaxPrefixExceeded):
        text = f"{who}: more than {ev.count - 1} prefixes of {ev.family}: the rest are ignored (max_prefixes)"
        return logging.WARNING, text, {"family": str(ev.family), "limit": ev.count - 1}
    if isinstance(ev, EndOfRibSent):
        fams = " ".join(str(f) for f in ev.families)
        return (
            logging.INFO,
            f"{who}: sent {ev.prefixes} prefixes and End-of-RIB ({fams})",
            {"prefixes": ev.prefixes},
        )
    if isinstance(ev, EndOfRibReceived):
        text = f"{who}: End-of-RIB for {ev.family}" + (
            f", {ev.stale_removed} stale routes removed" if ev.stale_removed else ""
        )
        return logging.INFO if ev.stale_removed else logging.DEBUG, text, {"family": str(ev.family)}
    if isinstance(ev, StaleRoutesKept):
        text = f"{who}: graceful restart helper: {ev.count} routes kept, stale, for {ev.restart_time} s"
        return logging.INFO, text, {"stale": ev.count, "restart_time": ev.restart_time}
    if isinstance(ev, StaleRoutesFlushed):
        return logging.INFO, f"{who}: {ev.count} stale routes removed ({ev.why})", {"stale": ev.count}
    if isinstance(ev, RouteRefreshRequested):
        return logging.DEBUG, f"{who}: ROUTE-REFRESH for {ev.family} (subtype {ev.subtype})", {}
    if isinstance(ev, CloseRequested) and ev.reason:
        return logging.DEBUG, f"{who}: connection closed: {ev.reason}", {}
    return None


def describe_bfd(peer: Peer, ev: BfdEvent) -> tuple[int, str]:
    """(level, message) for a BFD state change: a failure is a warning, with what it did to BGP."""
    who = f"{_who(peer)}: BFD {ev.key}"
    if ev.new is BfdState.UP:
        return logging.INFO, f"{who}: Up"
    if ev.is_failure:
        held = "the BGP session is down until BFD is Up again" if peer.config.peer.bfd else "BGP not coupled"
        return logging.WARNING, f"{who}: Down: {ev.reason.value} (diag {ev.diag}); {held}"
    if ev.old is BfdState.UP:  # AdminDown, ours or the neighbor's: no failure (RFC 5882 §3.2)
        tail = "; not a failure, BGP stays" if ev.reason is ChangeReason.NEIGHBOR_ADMIN_DOWN else ""
        return logging.INFO, f"{who}: {ev.old} -> {ev.new}: {ev.reason.value}{tail}"
    return logging.DEBUG, f"{who}: {ev.old} -> {ev.new} ({ev.reason.value})"


class EventLog:
    """Logs peer events; rate-limits connection failures per peer."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._quiet_until: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def __call__(self, peer: Peer, ev: AnyPeerEvent) -> None:
        if isinstance(ev, ConnectionFailed):
            self._failure(peer, ev)
            return
        line = describe(peer, ev)
        if line is None:
            return
        level, text, fields = line
        if log.isEnabledFor(level):
            name = type(ev).__name__
            log.log(level, text, extra={"fields": {"peer": peer.label, "event": name, **fields}})
        if isinstance(ev, SessionUp):
            self._quiet_until.pop(peer.label, None)

    def bfd(self, peer: Peer, ev: BfdEvent) -> None:
        """One line for a BFD state change of ``peer``'s session (RFC 5880 §6.2, RFC 5882 §3.2)."""
        level, text = describe_bfd(peer, ev)
        if log.isEnabledFor(level):
            fields = {
                "peer": peer.label,
                "event": "BfdStateChanged",
                "old": str(ev.old),
                "state": str(ev.new),
                "diag": str(ev.diag),
                "reason": ev.reason.value,
                "failure": ev.is_failure,
            }
            log.log(level, text, extra={"fields": fields})

    def _failure(self, peer: Peer, ev: ConnectionFailed) -> None:
        now, label = self._clock(), peer.label
        if now < self._quiet_until.get(label, 0.0):
            self._suppressed[label] = self._suppressed.get(label, 0) + 1
            return
        more = self._suppressed.pop(label, 0)
        self._quiet_until[label] = now + FAILURE_QUIET
        p = peer.config.peer
        text = f"{_who(peer)}: cannot connect to {p.address} port {p.port}: {ev.detail}"
        if more:
            text += f" ({more} more failures in the last {FAILURE_QUIET:.0f} s)"
        fields = {"peer": label, "event": "ConnectionFailed", "detail": ev.detail, "repeated": more}
        log.warning(text, extra={"fields": fields})
