"""BGP sessions and peers, sans-IO: the RFC 4271 §8 FSM and the ``Peer`` that owns one neighbour.

Imports ``bgpsvc.wire`` and ``bgpsvc.rib`` only; no sockets, no clocks (``now`` is always an input).
"""

from .collision import keep_existing
from .config import BfdSettings, GracefulRestartConfig, PeerConfig, SessionConfig
from .events import (
    AnyPeerEvent,
    CloseRequested,
    ConnectionFailed,
    ConnectRequested,
    DownKind,
    DownReason,
    EndOfRibReceived,
    EndOfRibSent,
    MaxPrefixExceeded,
    RouteRefreshRequested,
    SessionDown,
    SessionEvent,
    SessionUp,
    StaleRoutesFlushed,
    StaleRoutesKept,
    State,
    StateChanged,
    UpdateReceived,
)
from .negotiate import SessionParams, build_open, negotiate
from .peer import STREAM_CHUNK, Peer, PeerTimer
from .session import FSM_SUBCODES, Input, Session, Timer
from .status import BfdPeerStatus, PeerStatus
from .tally import notification_name

__all__ = [
    "FSM_SUBCODES",
    "STREAM_CHUNK",
    "AnyPeerEvent",
    "BfdPeerStatus",
    "BfdSettings",
    "CloseRequested",
    "ConnectRequested",
    "ConnectionFailed",
    "DownKind",
    "DownReason",
    "EndOfRibReceived",
    "EndOfRibSent",
    "GracefulRestartConfig",
    "Input",
    "MaxPrefixExceeded",
    "Peer",
    "PeerConfig",
    "PeerStatus",
    "PeerTimer",
    "RouteRefreshRequested",
    "Session",
    "SessionConfig",
    "SessionDown",
    "SessionEvent",
    "SessionParams",
    "SessionUp",
    "StaleRoutesFlushed",
    "StaleRoutesKept",
    "State",
    "StateChanged",
    "Timer",
    "UpdateReceived",
    "build_open",
    "keep_existing",
    "negotiate",
    "notification_name",
]
