"""The FSM's inputs and timers (RFC 4271 §8.1, §10), and the loop check every UPDATE gets."""

from __future__ import annotations

from enum import Enum

from ..wire import AsPath, FsmSubcode, MessageType, Update, merge_as4
from .events import State

OPEN_HOLD_TIME = 240.0  # "large value" hold timer while waiting for OPEN (RFC 4271 §8.2.2, 4 minutes)


def looped(update: Update, local_as: int, four_octet_as: bool) -> bool:
    """Whether the UPDATE's (true) AS path contains ``local_as`` (RFC 4271 §9.1.2, RFC 6793 §4.2.3)."""
    attrs = update.attributes if four_octet_as else merge_as4(update.attributes)
    for a in attrs:
        if isinstance(a, AsPath):
            return local_as in a.asns
    return False


class Timer(Enum):
    """Session timers (RFC 4271 §10, §8.1.1)."""

    CONNECT_RETRY = "ConnectRetryTimer"
    HOLD = "HoldTimer"
    KEEPALIVE = "KeepaliveTimer"
    IDLE_HOLD = "IdleHoldTimer"


class PeerTimer(Enum):
    """A ``Peer``'s own deadlines, beside its sessions' timers."""

    RESTART = "RestartTimer"  # RFC 4724 §4.2: the peer's stale routes go when it expires
    STREAM = "StreamStep"  # the next chunk of a large first table


class Input(Enum):
    """FSM events (RFC 4271 §8.1, numbers in comments); ROUTE_REFRESH_* from RFC 2918/7313."""

    MANUAL_START = "ManualStart"  # 1
    MANUAL_STOP = "ManualStop"  # 2
    AUTOMATIC_START = "AutomaticStart"  # 3: the IdleHoldTimer expired
    MANUAL_START_PASSIVE = "ManualStart_with_PassiveTcpEstablishment"  # 4
    AUTOMATIC_START_PASSIVE = "AutomaticStart_with_PassiveTcpEstablishment"  # 5
    CONNECT_RETRY_TIMER_EXPIRES = "ConnectRetryTimer_Expires"  # 9
    HOLD_TIMER_EXPIRES = "HoldTimer_Expires"  # 10
    KEEPALIVE_TIMER_EXPIRES = "KeepaliveTimer_Expires"  # 11
    TCP_CONNECTION_CONFIRMED = "TcpConnectionConfirmed"  # 16/17: outgoing acked or incoming confirmed
    TCP_CONNECTION_FAILS = "TcpConnectionFails"  # 18
    BGP_OPEN = "BGPOpen"  # 19: an OPEN that negotiated
    BGP_HEADER_ERR = "BGPHeaderErr"  # 21
    BGP_OPEN_MSG_ERR = "BGPOpenMsgErr"  # 22: a malformed or unacceptable OPEN
    OPEN_COLLISION_DUMP = "OpenCollisionDump"  # 23
    NOTIF_MSG_VER_ERR = "NotifMsgVerErr"  # 24
    NOTIF_MSG = "NotifMsg"  # 25
    KEEPALIVE_MSG = "KeepAliveMsg"  # 26
    UPDATE_MSG = "UpdateMsg"  # 27
    UPDATE_MSG_ERR = "UpdateMsgErr"  # 28
    MAX_PREFIX_EXCEEDED = "MaxPrefixExceeded"  # RFC 4486: an UPDATE over the limit, action cease
    ROUTE_REFRESH_MSG = "RouteRefreshMsg"
    ROUTE_REFRESH_MSG_ERR = "RouteRefreshMsgErr"
    BFD_DOWN = "BfdDown"  # RFC 5882 §3.2: the BFD session failed (not the peer's AdminDown)


#: RFC 6608 §3: the FSM error subcode names the state the unexpected message arrived in.
FSM_SUBCODES = {
    State.OPENSENT: FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENSENT,
    State.OPENCONFIRM: FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENCONFIRM,
    State.ESTABLISHED: FsmSubcode.UNEXPECTED_MESSAGE_IN_ESTABLISHED,
}

MESSAGE_INPUTS = {
    MessageType.OPEN: Input.BGP_OPEN,
    MessageType.UPDATE: Input.UPDATE_MSG,
    MessageType.NOTIFICATION: Input.NOTIF_MSG,
    MessageType.KEEPALIVE: Input.KEEPALIVE_MSG,
    MessageType.ROUTE_REFRESH: Input.ROUTE_REFRESH_MSG,
}
