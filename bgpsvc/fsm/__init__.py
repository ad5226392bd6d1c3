"""The BGP session: a sans-IO RFC 4271 §8 state machine. Imports ``bgpsvc.wire`` only."""

from .config import GracefulRestartConfig, SessionConfig
from .events import (
    CloseRequested,
    ConnectRequested,
    DownKind,
    DownReason,
    MaxPrefixExceeded,
    RouteRefreshRequested,
    SessionDown,
    SessionEvent,
    SessionUp,
    State,
    StateChanged,
    UpdateReceived,
)
from .negotiate import SessionParams, build_open, negotiate
from .session import FSM_SUBCODES, TRANSITIONS, Input, Session, Timer

__all__ = [
    "FSM_SUBCODES",
    "TRANSITIONS",
    "CloseRequested",
    "ConnectRequested",
    "DownKind",
    "DownReason",
    "GracefulRestartConfig",
    "Input",
    "MaxPrefixExceeded",
    "RouteRefreshRequested",
    "Session",
    "SessionConfig",
    "SessionDown",
    "SessionEvent",
    "SessionParams",
    "SessionUp",
    "State",
    "StateChanged",
    "Timer",
    "UpdateReceived",
    "build_open",
    "negotiate",
]
