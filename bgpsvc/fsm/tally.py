"""Counters an operator reads per peer: flaps, NOTIFICATIONs by name, RFC 7606 outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..wire import Notification
from .events import AnyPeerEvent, DownKind, SessionDown, UpdateReceived


def notification_name(note: Notification) -> str:
    """``"Cease / Administrative Shutdown"``: code and subcode by name, without the RFC 9003 text."""
    text = str(note)
    return text.split(": ", 1)[0] if note.shutdown_message is not None else text


@dataclass(slots=True)
class Tally:
    """Running counts for one peer, fed every event its sessions produce."""

    flaps: int = 0
    notifications_sent: dict[str, int] = field(default_factory=dict)
    notifications_received: dict[str, int] = field(default_factory=dict)
    update_errors: dict[str, int] = field(default_factory=dict)

    def count(self, ev: AnyPeerEvent, flaps: bool = True) -> None:
        """Account for one event (``flaps=False``: of a connection that never carried the peering)."""
        if isinstance(ev, SessionDown):
            if ev.was_established and flaps:
                self.flaps += 1
            note = ev.reason.notification
            if note is not None:
                kind = ev.reason.kind
                table = (
                    self.notifications_received
                    if kind is DownKind.NOTIFICATION_RECEIVED
                    else self.notifications_sent
                )
                name = notification_name(note)
                table[name] = table.get(name, 0) + 1
        elif isinstance(ev, UpdateReceived):
            for err in ev.update.errors:
                name = err.handling.label
                self.update_errors[name] = self.update_errors.get(name, 0) + 1
