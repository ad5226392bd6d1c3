"""Graceful restart as the helper (RFC 4724 §4.2, RFC 8538 §3): the restarting peer's routes are kept,
marked stale, while it comes back; End-of-RIB, its restart time (``PeerTimer.RESTART``) or its return
without graceful restart (or without preserved forwarding for a family) ends that."""

from __future__ import annotations

from collections import deque

from ..rib import AdjRibIn
from ..wire import CeaseSubcode, Family, GracefulRestart
from .config import SessionConfig
from .events import (
    AnyPeerEvent,
    DownKind,
    EndOfRibReceived,
    SessionDown,
    StaleRoutesFlushed,
    StaleRoutesKept,
    UpdateReceived,
)
from .inputs import PeerTimer


class RestartHelper:
    """The receiving side of one peer (mixed into ``Peer``)."""

    config: SessionConfig
    rib_in: AdjRibIn | None
    deadlines: dict[PeerTimer, float]
    _events: deque[AnyPeerEvent]
    _peer_gr: GracefulRestart | None

    def _keep_forwarding_families(self) -> None:
        """Back after a restart: stale routes of families without preserved forwarding go now (§4.2)."""
        rib = self.rib_in
        if rib is None or PeerTimer.RESTART not in self.deadlines:
            return
        gr = self._peer_gr
        kept = {Family(f.afi, f.safi) for f in gr.families if f.forwarding} if gr is not None else set()
        flushed = sum(rib.end_of_rib(family) for family in list(rib.routes) if family not in kept)
        if gr is None:
            self.deadlines.pop(PeerTimer.RESTART, None)
        if flushed:
            why = "peer back without graceful restart" if gr is None else "forwarding state not preserved"
            self._events.append(StaleRoutesFlushed(flushed, why))

    def _retain_or_clear(self, ev: SessionDown, now: float) -> None:
        """The session went down: keep the peer's routes as stale, or forget them (RFC 4724 §4.2)."""
        rib_in, gr = self.rib_in, self._peer_gr
        if rib_in is None:
            return
        note = ev.reason.notification
        hard_reset = note is not None and note.code == 6 and note.subcode == CeaseSubcode.HARD_RESET
        # A BFD failure, ours or the peer's (Cease/BFD Down, RFC 9384), says forwarding between us is
        # what failed: stale routes would only keep traffic going into the hole (RFC 5882 §4.3).
        bfd_down = note is not None and note.code == 6 and note.subcode == CeaseSubcode.BFD_DOWN
        our_n = self.config.graceful_restart is not None and self.config.graceful_restart.notification
        # RFC 4724 §4.2 (and RFC 8538 §3 with the N bit on both sides): keep the peer's routes as stale.
        retain = (
            ev.was_established
            and not bfd_down
            and (
                ev.reason.kind in (DownKind.TCP_FAILED, DownKind.HOLD_TIMER_EXPIRED)
                or (gr is not None and gr.notification and our_n and not hard_reset)
            )
        )
        if not retain or gr is None:
            rib_in.clear()
            return
        kept = [Family(f.afi, f.safi) for f in gr.families]
        for family in list(rib_in.routes):
            if family not in kept:
                rib_in.routes.pop(family)
        count = rib_in.mark_stale(kept)
        self.deadlines[PeerTimer.RESTART] = now + gr.restart_time
        self._events.append(StaleRoutesKept(count, gr.restart_time))

    def _restart_time_over(self) -> None:
        if self.rib_in is not None:
            dropped = self.rib_in.flush_stale()
            self._events.append(StaleRoutesFlushed(dropped, "restart time over"))

    def _received(self, ev: UpdateReceived) -> None:
        if self.rib_in is None:
            return
        if ev.looped:  # the session found our AS in the path (RFC 4271 §9.1.2)
            self.rib_in.withdraw(ev.update.withdrawals() + ev.update.announced())
            return
        self.rib_in.apply(ev.update)
        eor = ev.update.end_of_rib
        if eor is not None:
            removed = self.rib_in.end_of_rib(eor)
            self._events.append(EndOfRibReceived(eor, removed))
