"""BFD as a client of one peer (RFC 5882 §3.2, RFC 9384), sans-IO: the owner's BFD reports Up and failure.

The owner runs the BFD session (``bgpsvc.aio`` keeps it in its own thread) and calls
``Peer.bfd_changed(up, now, detail)``:

- ``up=False``: a failure, i.e. Up -> Down by detection timeout or because the neighbor said Down. The
  neighbor going AdminDown is no failure (RFC 5882 §3.2: it only stopped BFD) and the owner does not
  report it. The session (and a colliding one) ends at once with Cease/BFD Down (RFC 9384) and a
  ``DownKind.BFD_DOWN`` reason, and stays Idle: no automatic restart, a ManualStart only records the
  wish, and a connection from the peer is refused (Idle refuses, RFC 4271 §8.2.2).
- ``up=True``: the hold ends; the IdleHoldTimer runs as after any failure (DampPeerOscillations, so a
  flapping link is damped) and its expiry starts the session.

Before BFD has first come Up the session is not held (as FRR does by default): a peer that runs no BFD
still peers, it only gains nothing from ours. The routes of a peer whose BFD failed are not kept as
stale (``restart.py``): forwarding to it is what failed.
"""

from __future__ import annotations

from .advertise import Conn
from .config import SessionConfig
from .session import Session


class BfdCoupling:
    """The BFD half of ``Peer`` (mixed in)."""

    config: SessionConfig
    session: Session
    bfd_held: bool
    _conns: dict[int, Conn]
    _primary: int | None
    _colliding: int | None

    def _pump(self, now: float) -> None: ...  # Peer's

    def bfd_changed(self, up: bool, now: float, detail: str = "") -> None:
        """The peer's BFD session came Up (``up``) or failed (RFC 5882 §3.2); ``detail`` says why."""
        if up:
            self._bfd_release(now)
        elif self.config.peer.bfd is not None:
            self.bfd_held = True
            if self._colliding is not None:
                self._conns[self._colliding].session.bfd_down(now, detail)
            self.session.bfd_down(now, detail)
            self._pump(now)

    def _bfd_release(self, now: float) -> None:
        """No hold any more: BFD is Up, or no longer configured for this peer."""
        if self.bfd_held:
            self.bfd_held = False
            self.session.bfd_up(now)
            self._pump(now)

    @property
    def local_address(self) -> str | None:
        """Our address on the session's connection, once there is one (a multihop BFD session's source)."""
        record = self._conns.get(self._primary) if self._primary is not None else None
        return record.local_address if record is not None else None
