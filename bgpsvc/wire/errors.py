"""Errors that carry the NOTIFICATION they mean (RFC 4271 §4.5, §6; RFC 7606 §2).

The codec raises these; the session catches them in one place and turns them into a NOTIFICATION
(or, for UPDATE errors handled softly, into treat-as-withdraw / attribute-discard).
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

from .constants import attr_name


class ErrorCode(IntEnum):
    """NOTIFICATION error codes (RFC 4271 §4.5, RFC 6608, RFC 7313)."""

    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH = 7


class HeaderSubcode(IntEnum):
    """Message Header Error subcodes (RFC 4271 §6.1)."""

    UNSPECIFIC = 0
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(IntEnum):
    """OPEN Message Error subcodes (RFC 4271 §6.2, RFC 5492, RFC 9234)."""

    UNSPECIFIC = 0
    UNSUPPORTED_VERSION_NUMBER = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7
    ROLE_MISMATCH = 11


class UpdateSubcode(IntEnum):
    """UPDATE Message Error subcodes (RFC 4271 §6.3)."""

    UNSPECIFIC = 0
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class FsmSubcode(IntEnum):
    """Finite State Machine Error subcodes (RFC 6608 §3)."""

    UNSPECIFIED = 0
    UNEXPECTED_MESSAGE_IN_OPENSENT = 1
    UNEXPECTED_MESSAGE_IN_OPENCONFIRM = 2
    UNEXPECTED_MESSAGE_IN_ESTABLISHED = 3


class CeaseSubcode(IntEnum):
    """Cease subcodes (RFC 4486, RFC 8538)."""

    MAXIMUM_PREFIXES_REACHED = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DECONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8
    HARD_RESET = 9
    BFD_DOWN = 10


class RouteRefreshSubcode(IntEnum):
    """ROUTE-REFRESH Message Error subcodes (RFC 7313 §5)."""

    RESERVED = 0
    INVALID_MESSAGE_LENGTH = 1


class Handling(IntEnum):
    """RFC 7606 §2 error handling approaches, ordered weakest to strongest so errors fold with max()."""

    ATTRIBUTE_DISCARD = 1
    TREAT_AS_WITHDRAW = 2
    AFI_SAFI_DISABLE = 3
    SESSION_RESET = 4

    @property
    def label(self) -> str:
        """The approach as RFC 7606 §2 spells it: ``treat-as-withdraw``, ``attribute-discard``, ..."""
        return self.name.lower().replace("_", "-")


class NotificationError(Exception):
    """A protocol error that maps to one NOTIFICATION (RFC 4271 §4.5)."""

    code: ClassVar[int] = 0

    def __init__(self, subcode: int, data: bytes = b"", reason: str = "") -> None:
        self.subcode = subcode
        self.data = bytes(data)
        self.reason = reason
        super().__init__(reason or f"code {self.code} subcode {subcode}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(subcode={self.subcode}, data={self.data.hex()!r}, reason={self.reason!r})"
        )


class MessageHeaderError(NotificationError):
    """Message Header Error (RFC 4271 §6.1)."""

    code = ErrorCode.MESSAGE_HEADER


class OpenMessageError(NotificationError):
    """OPEN Message Error (RFC 4271 §6.2)."""

    code = ErrorCode.OPEN_MESSAGE


class UpdateMessageError(NotificationError):
    """UPDATE Message Error (RFC 4271 §6.3) with its RFC 7606 handling, attribute and governing rule.

    Raised for session reset and AFI/SAFI disable; softer outcomes are listed in ``Update.errors``.
    Everything a log line needs is here: ``attr_type``/``attr_name`` (None when no single attribute is
    at fault), ``handling``, ``rfc`` (the sections that make it an error and choose the handling) and
    ``reason``; ``summary`` joins them. ``data`` is the NOTIFICATION Data field (RFC 4271 §6.3).
    """

    code = ErrorCode.UPDATE_MESSAGE

    def __init__(
        self,
        subcode: int,
        data: bytes = b"",
        reason: str = "",
        handling: Handling = Handling.SESSION_RESET,
        attr_type: int | None = None,
        *,
        rfc: str = "RFC 4271 §6.3",
    ) -> None:
        super().__init__(subcode, data, reason)
        self.handling = handling
        self.attr_type = attr_type
        self.rfc = rfc

    @property
    def attr_name(self) -> str | None:
        """IANA name of the attribute at fault (``AS_PATH``, or ``ATTR_99`` for an unknown code)."""
        return None if self.attr_type is None else attr_name(self.attr_type)

    @property
    def summary(self) -> str:
        """One line for a log: ``AS_PATH (2): treat-as-withdraw, RFC 7606 §7.2: <reason>``."""
        what = "UPDATE" if self.attr_type is None else f"{self.attr_name} ({self.attr_type})"
        return f"{what}: {self.handling.label}, {self.rfc}: {self.reason}"

    def __repr__(self) -> str:
        return (
            f"UpdateMessageError(subcode={self.subcode}, handling={self.handling.name}, "
            f"attr_type={self.attr_type}, rfc={self.rfc!r}, reason={self.reason!r})"
        )


class RouteRefreshMessageError(NotificationError):
    """ROUTE-REFRESH Message Error (RFC 7313 §5)."""

    code = ErrorCode.ROUTE_REFRESH
