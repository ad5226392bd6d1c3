"""Bidirectional Forwarding Detection, sans-IO (RFC 5880, single hop RFC 5881, multihop RFC 5883).

``BfdEndpoint`` owns the sessions of a system and routes datagrams to them; ``BfdSession`` is one
RFC 5880 state machine; ``decode_control`` / ``encode_control`` are the packet codec. No clock, no
socket: ``bgpsvc.aio.bfd`` is the asyncio driver.
"""

from .config import AuthConfig, BfdConfig, SessionKey
from .endpoint import BfdEndpoint
from .events import BfdEvent, BfdStateChanged, BfdStatus, ChangeReason
from .packet import (
    AuthType,
    ControlPacket,
    Diag,
    DropReason,
    KeyedAuth,
    SimplePassword,
    State,
    decode_control,
    encode_control,
)
from .session import TRANSITIONS, BfdSession

__all__ = [
    "TRANSITIONS",
    "AuthConfig",
    "AuthType",
    "BfdConfig",
    "BfdEndpoint",
    "BfdEvent",
    "BfdSession",
    "BfdStateChanged",
    "BfdStatus",
    "ChangeReason",
    "ControlPacket",
    "Diag",
    "DropReason",
    "KeyedAuth",
    "SessionKey",
    "SimplePassword",
    "State",
    "decode_control",
    "encode_control",
]
