"""Path attribute base: the TLV header written once (RFC 4271 §4.3) and the malformed-value signal."""

from __future__ import annotations

from dataclasses import dataclass
from struct import Struct
from typing import ClassVar, Self

from .constants import AttrFlag
from .errors import Handling, UpdateSubcode
from .negotiated import DEFAULT, Negotiated

_HDR = Struct(">BBB")
_HDR_EXT = Struct(">BBH")

OPTIONAL = AttrFlag.OPTIONAL
TRANSITIVE = AttrFlag.TRANSITIVE
PARTIAL = AttrFlag.PARTIAL
EXTENDED_LENGTH = AttrFlag.EXTENDED_LENGTH
WELL_KNOWN = TRANSITIVE  # well-known attributes are always transitive (RFC 4271 §5)
OPTIONAL_TRANSITIVE = OPTIONAL | TRANSITIVE
OPTIONAL_NON_TRANSITIVE = OPTIONAL


class Malformed(Exception):
    """Raised by ``decode_value``; the UPDATE decoder adds the attribute bytes and RFC 7606 handling."""

    def __init__(self, subcode: int, reason: str, data: bytes | None = None) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason
        self.data = data


def length_error(reason: str) -> Malformed:
    """Attribute Length Error (RFC 4271 §6.3)."""
    return Malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, reason)


def encode_attribute(flags: int, type_code: int, value: bytes) -> bytes:
    """Attribute header + value, setting the Extended Length bit only when needed (RFC 4271 §4.3)."""
    n = len(value)
    if n > 255:
        if n > 0xFFFF:
            raise ValueError(f"attribute {type_code} value of {n} bytes exceeds 65535")
        return _HDR_EXT.pack(flags | EXTENDED_LENGTH, type_code, n) + value
    return _HDR.pack(flags & ~EXTENDED_LENGTH, type_code, n) + value


@dataclass(frozen=True, slots=True)
class PathAttribute:
    """A recognised path attribute; subclasses set TYPE, FLAGS and their RFC 7606 handling."""

    TYPE: ClassVar[int] = 0
    FLAGS: ClassVar[int] = 0
    #: RFC 7606 handling when this attribute is malformed (including a flags conflict, §3(c)).
    MALFORMED: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW

    @property
    def type_code(self) -> int:
        """The attribute type code."""
        return self.TYPE

    def encode_value(self, ctx: Negotiated) -> bytes:
        """The attribute value octets."""
        raise NotImplementedError

    @classmethod
    def decode_value(cls, value: bytes, ctx: Negotiated) -> Self:
        """Parse the attribute value; raise ``Malformed`` when it is invalid."""
        raise NotImplementedError

    def encode(self, ctx: Negotiated = DEFAULT) -> bytes:
        """Header and value (RFC 4271 §4.3)."""
        value = self.encode_value(ctx)
        n = len(value)
        if n <= 255:
            return _HDR.pack(self.FLAGS, self.TYPE, n) + value
        return encode_attribute(self.FLAGS, self.TYPE, value)


def check_u32(name: str, value: int) -> None:
    """Reject values that do not fit four octets."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} {value} does not fit 32 bits")
