"""What a BFD session tells its owner: typed state changes and a status snapshot (RFC 5880 §6.8.1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .config import SessionKey
from .packet import Diag, DropReason, State


class ChangeReason(Enum):
    """Why the local state changed (RFC 5880 §6.2, §6.8.4, §6.8.6, §6.8.16)."""

    PEER_STATE = "peer's state"  # Down -> Init -> Up as the three-way handshake goes
    NEIGHBOR_DOWN = "neighbor signaled session down"  # received Down while Init/Up (diag 3)
    NEIGHBOR_ADMIN_DOWN = "neighbor administratively down"  # received AdminDown (diag 3)
    DETECTION_TIME_EXPIRED = "control detection time expired"  # diag 1
    ADMIN_DOWN = "administratively down"  # our admin_down() (diag 7)
    ADMIN_ENABLE = "administratively enabled"  # our enable()


@dataclass(frozen=True, slots=True)
class BfdStateChanged:
    """The session moved ``old`` -> ``new``; ``diag`` is bfd.LocalDiag after the change.

    RFC 5882 §3.2 for clients such as BGP: :attr:`is_failure` (Up -> Down because packets stopped or
    the peer said Down) takes the client session down at once; a peer going AdminDown is not a failure
    and must not (the peer only stopped BFD), nor is our own admin_down().
    """

    key: SessionKey
    old: State
    new: State
    diag: Diag
    reason: ChangeReason

    @property
    def is_failure(self) -> bool:
        """Up -> Down through detection timeout or the neighbor's Down (not AdminDown)."""
        return (
            self.old is State.UP
            and self.new is State.DOWN
            and self.reason in (ChangeReason.DETECTION_TIME_EXPIRED, ChangeReason.NEIGHBOR_DOWN)
        )

    def __str__(self) -> str:
        return f"BFD {self.key}: {self.old} -> {self.new} ({self.reason.value}, diag {self.diag})"


BfdEvent = BfdStateChanged


@dataclass(frozen=True, slots=True)
class BfdStatus:
    """A snapshot of one session (RFC 5880 §6.8.1 variables plus counters); intervals in microseconds.

    ``tx_interval_us``: the negotiated transmit interval before jitter (§6.8.2);
    ``rx_interval_us``: the interval the peer sends at as we expect it (detection time / peer mult).
    """

    key: SessionKey
    state: State
    remote_state: State
    local_discr: int
    remote_discr: int
    local_diag: Diag
    remote_diag: int
    detect_mult: int
    remote_detect_mult: int
    desired_min_tx_us: int
    required_min_rx_us: int
    remote_desired_min_tx_us: int
    remote_min_rx_us: int
    tx_interval_us: int
    rx_interval_us: int
    detection_time_us: int
    polling: bool
    flaps: int
    last_down_diag: Diag
    packets_sent: int
    packets_received: int
    dropped: tuple[tuple[DropReason, int], ...]
    last_change: float | None
