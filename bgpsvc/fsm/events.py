"""What a session tells its driver (sans-IO outputs): typed events with typed down reasons."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..wire import Family, Notification, Update
from .negotiate import SessionParams


class State(Enum):
    """Session states (RFC 4271 §8.2.2)."""

    IDLE = "Idle"
    CONNECT = "Connect"
    ACTIVE = "Active"
    OPENSENT = "OpenSent"
    OPENCONFIRM = "OpenConfirm"
    ESTABLISHED = "Established"


class DownKind(Enum):
    """Why a session went down (cf. GoBGP's fsmStateReasonType)."""

    ADMIN_STOP = "admin stop"
    HOLD_TIMER_EXPIRED = "hold timer expired"
    NOTIFICATION_SENT = "notification sent"
    NOTIFICATION_RECEIVED = "notification received"
    TCP_FAILED = "connection failed"
    COLLISION = "collision resolution"
    MAX_PREFIX = "maximum prefixes reached"
    BFD_DOWN = "BFD down"  # RFC 5882 §3.2: the peer's BFD session failed (Cease/BFD Down, RFC 9384)


@dataclass(frozen=True, slots=True)
class DownReason:
    """A typed reason; ``notification`` is the one sent or received, if any (with RFC 9003 text)."""

    kind: DownKind
    notification: Notification | None = None
    detail: str = ""

    def __str__(self) -> str:
        text = self.kind.value
        if self.notification is not None:
            text += f": {self.notification}"
        if self.detail:
            text += f" ({self.detail})"
        return text


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """The driver should open a TCP connection to the peer (RFC 4271 §8.2.2, Connect state)."""


@dataclass(frozen=True, slots=True)
class CloseRequested:
    """The driver should close the TCP connection after sending what is queued.

    A ``Session`` leaves ``conn`` unset (it has one connection); a ``Peer`` names the connection and,
    when it refuses or drops one that never carried the session, says why.
    """

    conn: int | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class StateChanged:
    """The FSM moved from ``old`` to ``new``."""

    old: State
    new: State


@dataclass(frozen=True, slots=True)
class SessionUp:
    """Established: what was negotiated."""

    params: SessionParams


@dataclass(frozen=True, slots=True)
class SessionDown:
    """Left OpenSent/OpenConfirm/Established; ``was_established`` tells which."""

    reason: DownReason
    was_established: bool


@dataclass(frozen=True, slots=True)
class UpdateReceived:
    """An UPDATE, already RFC 7606-processed (``update.errors`` lists soft errors).

    ``looped``: its AS_PATH holds our AS (RFC 4271 §9.1.2), so what it announces replaces, as a
    withdrawal, whatever the peer had sent for those prefixes.
    """

    update: Update
    looped: bool = False


@dataclass(frozen=True, slots=True)
class RouteRefreshRequested:
    """The peer asked for our routes again (RFC 2918 §4); subtype per RFC 7313 (0, 1 BoRR, 2 EoRR)."""

    family: Family
    subtype: int = 0


@dataclass(frozen=True, slots=True)
class MaxPrefixExceeded:
    """More prefixes than ``max_prefixes`` arrived for ``family``; with action "log" the session stays up."""

    family: Family
    count: int


@dataclass(frozen=True, slots=True)
class ConnectionFailed:
    """Our connection attempt failed (the driver's error text, e.g. "Connection refused")."""

    detail: str


@dataclass(frozen=True, slots=True)
class EndOfRibSent:
    """The first table went out, closed by End-of-RIB (RFC 4724 §2)."""

    prefixes: int
    families: tuple[Family, ...]


@dataclass(frozen=True, slots=True)
class EndOfRibReceived:
    """The peer finished its table for ``family``; ``stale_removed`` routes it did not renew went."""

    family: Family
    stale_removed: int


@dataclass(frozen=True, slots=True)
class StaleRoutesKept:
    """We are the peer's graceful-restart helper (RFC 4724 §4.2): its routes kept, marked stale."""

    count: int
    restart_time: int


@dataclass(frozen=True, slots=True)
class StaleRoutesFlushed:
    """Stale routes dropped: the restart time passed, or the peer came back without graceful restart."""

    count: int
    why: str


SessionEvent = (
    ConnectRequested
    | CloseRequested
    | StateChanged
    | SessionUp
    | SessionDown
    | UpdateReceived
    | RouteRefreshRequested
    | MaxPrefixExceeded
)

#: What a ``Peer`` tells its driver: the session's events plus the peer-level ones.
AnyPeerEvent = (
    SessionEvent | ConnectionFailed | EndOfRibSent | EndOfRibReceived | StaleRoutesKept | StaleRoutesFlushed
)
