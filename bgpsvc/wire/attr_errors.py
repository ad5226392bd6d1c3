"""The soft errors of the path attributes field (RFC 7606), one constructor per kind of problem.

Each names the attribute, the handling, the RFC section and a reason; ``attr_block`` decides when
they apply. Those at AFI/SAFI disable or stronger are raised here, as the decoder would.
"""

from __future__ import annotations

from .attr_base import Malformed, PathAttribute
from .constants import AttrType, attr_name
from .errors import Handling, UpdateMessageError, UpdateSubcode

_DISCARD = Handling.ATTRIBUTE_DISCARD
_WITHDRAW = Handling.TREAT_AS_WITHDRAW
_DISABLE = Handling.AFI_SAFI_DISABLE
_RESET = Handling.SESSION_RESET
_MP_TYPES = (AttrType.MP_REACH_NLRI, AttrType.MP_UNREACH_NLRI)
_MANDATORY = (AttrType.ORIGIN, AttrType.AS_PATH)


def overrun(raw: bytes, type_code: int) -> UpdateMessageError:
    """The last attribute overruns the field (§4): the NLRI after the field can still be found."""
    return UpdateMessageError(
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR,
        raw,
        "attribute overruns the path attributes field",
        handling=_WITHDRAW,
        attr_type=type_code,
        rfc="RFC 7606 §4",
    )


def malformed(cls: type[PathAttribute], exc: Malformed, raw: bytes) -> UpdateMessageError:
    """The error for a value ``decode_value`` rejected; raised if it is AFI/SAFI disable or stronger."""
    handling = exc.handling or cls.MALFORMED
    rfc = f"{exc.rfc}, {cls.MALFORMED_RFC}" if exc.rfc else cls.MALFORMED_RFC
    error = UpdateMessageError(
        exc.subcode, raw, exc.reason, handling=handling, attr_type=int(cls.TYPE), rfc=rfc
    )
    if handling >= _DISABLE:
        raise error
    return error


def repeated(type_code: int, raw: bytes) -> UpdateMessageError:
    """§3(g): keep the first of a repeated attribute; a repeated MP attribute resets the session."""
    if type_code in _MP_TYPES:
        raise UpdateMessageError(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
            b"",
            f"{attr_name(type_code)} repeated",
            handling=_RESET,
            attr_type=type_code,
            rfc="RFC 7606 §3(g)",
        )
    return UpdateMessageError(
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
        raw,
        f"{attr_name(type_code)} repeated",
        handling=_DISCARD,
        attr_type=type_code,
        rfc="RFC 7606 §3(g)",
    )


def discarded(type_code: int, raw: bytes, reason: str, rfc: str) -> UpdateMessageError:
    """An attribute this peer must not send, discarded (``attr_block._DISCARDED_FROM``)."""
    return UpdateMessageError(
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR, raw, reason, handling=_DISCARD, attr_type=type_code, rfc=rfc
    )


def header_underrun(block: bytes, pos: int) -> UpdateMessageError:
    """Too few octets left for an attribute header (§4); the type code is named when it is there."""
    type_code = block[pos + 1] if len(block) - pos > 1 else None
    return UpdateMessageError(
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST,
        b"",
        "attribute header underrun",
        handling=_WITHDRAW,
        attr_type=type_code,
        rfc="RFC 7606 §4",
    )


def missing_mandatory(seen: int, has_nlri: bool) -> list[UpdateMessageError]:
    """§3(d): a well-known mandatory attribute is missing while there is something to reach; NEXT_HOP
    is mandatory only with classic NLRI (RFC 4760 §3). RFC 4271 §6.3: Data is the type code."""
    needed: tuple[int, ...] = _MANDATORY + ((AttrType.NEXT_HOP,) if has_nlri else ())
    return [
        UpdateMessageError(
            UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE,
            bytes((t,)),
            f"missing well-known attribute {attr_name(t)}",
            handling=_WITHDRAW,
            attr_type=t,
            rfc="RFC 7606 §3(d)",
        )
        for t in needed
        if not seen >> t & 1
    ]
