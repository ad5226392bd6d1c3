"""Path attribute base: the TLV header written once (RFC 4271 §4.3) and the malformed-value signal."""

from __future__ import annotations

from struct import Struct
from typing import ClassVar, Self

from .constants import AttrFlag
from .errors import Handling, UpdateSubcode
from .negotiated import DEFAULT, Negotiated

OPTIONAL = AttrFlag.OPTIONAL
TRANSITIVE = AttrFlag.TRANSITIVE
PARTIAL = AttrFlag.PARTIAL
EXTENDED_LENGTH = AttrFlag.EXTENDED_LENGTH
WELL_KNOWN = TRANSITIVE  # well-known attributes are always transitive (RFC 4271 §5)
OPTIONAL_TRANSITIVE = OPTIONAL | TRANSITIVE
OPTIONAL_NON_TRANSITIVE = OPTIONAL

# The attribute TLV header (RFC 4271 §4.3): flags, type code, then a 1-octet length, or a 2-octet one
# when the Extended Length bit is set. Values longer than 255 octets need the long form.
_HDR = Struct(">BBB")
_HDR_EXT = Struct(">BBH")
#: Octets of a header whose length field is 1 octet, and of one with Extended Length.
ATTR_HEADER_SIZE = _HDR.size
ATTR_HEADER_SIZE_EXT = _HDR_EXT.size
#: Longest value the 1-octet length field can describe.
MAX_SHORT_VALUE = 255


class Malformed(Exception):
    """Raised by ``decode_value``; the UPDATE decoder adds the attribute bytes and RFC 7606 handling.

    ``handling`` overrides the attribute's ``MALFORMED`` approach; ``rfc`` names the rule that makes the
    value malformed when it is not the attribute's own RFC 7606 section (e.g. RFC 7607 for AS 0).
    """

    def __init__(
        self, subcode: int, reason: str, handling: Handling | None = None, rfc: str | None = None
    ) -> None:
        super().__init__(reason)
        self.subcode = subcode
        self.reason = reason
        self.handling = handling
        self.rfc = rfc


def length_error(reason: str) -> Malformed:
    """Attribute Length Error (RFC 4271 §6.3)."""
    return Malformed(UpdateSubcode.ATTRIBUTE_LENGTH_ERROR, reason)


_pack_short = _HDR.pack
_NOT_EXTENDED = 0xFF & ~EXTENDED_LENGTH


def encode_attribute(flags: int, type_code: int, value: bytes) -> bytes:
    """Attribute header + value, setting the Extended Length bit only when needed (RFC 4271 §4.3)."""
    n = len(value)
    if n <= MAX_SHORT_VALUE:
        return _pack_short(flags & _NOT_EXTENDED, type_code, n) + value
    if n > 0xFFFF:
        raise ValueError(f"attribute {type_code} value of {n} bytes exceeds 65535")
    return _HDR_EXT.pack(flags | EXTENDED_LENGTH, type_code, n) + value


def decode_attribute_header(block: bytes, pos: int) -> tuple[int, int, int, int] | None:
    """(flags, type code, value start, value end) of the attribute at ``pos`` (RFC 4271 §4.3).

    None when fewer octets remain than the header needs. ``end`` may lie past the block: what an
    overrun means is the caller's decision (RFC 7606 §4).
    """
    n = len(block)
    if pos + ATTR_HEADER_SIZE > n:
        return None
    flags = block[pos]
    if flags & EXTENDED_LENGTH:
        if pos + ATTR_HEADER_SIZE_EXT > n:
            return None
        start = pos + ATTR_HEADER_SIZE_EXT
        return flags, block[pos + 1], start, start + ((block[pos + 2] << 8) | block[pos + 3])
    start = pos + ATTR_HEADER_SIZE
    return flags, block[pos + 1], start, start + block[pos + 2]


class PathAttribute:
    """A recognised path attribute; subclasses (frozen dataclasses) set TYPE, FLAGS and their RFC 7606
    handling.

    An attribute keeps its own octets: construction computes header and value once, for a 4-octet AS
    session (the decoder keeps the octets it read, while its intern table has room), and ``encode``
    returns them; an attribute built without them computes them on first use. A route's
    attributes are encoded for every peer and every UPDATE that carries them, so this turns each
    encode into a slot read: packing one route with five attributes (bench/codec.py, distinct case)
    takes 0.74 instead of 1.85 us. MP_REACH/MP_UNREACH carry per-message NLRI and keep nothing.
    """

    __slots__ = ("_wire",)
    _wire: bytes

    TYPE: ClassVar[int] = 0
    FLAGS: ClassVar[int] = 0
    #: RFC 7606 handling when this attribute is malformed (including a flags conflict, §3(c)).
    MALFORMED: ClassVar[Handling] = Handling.TREAT_AS_WITHDRAW
    #: The section that defines when the attribute is malformed and which handling applies.
    MALFORMED_RFC: ClassVar[str] = "RFC 7606 §3"
    #: Octets of every value of this type, if fixed: its header is then encoded once, per class.
    VALUE_SIZE: ClassVar[int | None] = None
    #: Whether instances keep their octets (False for attributes that carry NLRI).
    KEEPS_WIRE: ClassVar[bool] = True
    #: The octets differ on a 2-octet AS session (RFC 6793 §4.2.2): kept ones serve 4-octet sessions.
    AS_WIDTH_DEPENDENT: ClassVar[bool] = False
    _HEADER: ClassVar[bytes] = b""

    def __init_subclass__(cls) -> None:
        # No super(): zero-argument super() breaks in slots dataclasses (they are recreated).
        if cls.VALUE_SIZE is not None:
            cls._HEADER = encode_attribute(cls.FLAGS, cls.TYPE, bytes(cls.VALUE_SIZE))[
                : -cls.VALUE_SIZE or None
            ]

    def __post_init__(self) -> None:
        """Keep the octets; subclasses that validate in their own ``__post_init__`` call this last."""
        if self.KEEPS_WIRE:
            keep_wire(self, self.encode_uncached(DEFAULT))

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
        """Header and value (RFC 4271 §4.3): the kept octets when they suit ``ctx``."""
        if ctx.four_octet_as or not self.AS_WIDTH_DEPENDENT:
            try:
                return self._wire
            except AttributeError:
                # An MP attribute, or one built around __init__ (a decoder's trusted construction
                # on a path that did not store the octets, or a pickled copy): compute, keep.
                if self.KEEPS_WIRE:
                    wire = self.encode_uncached(DEFAULT)
                    keep_wire(self, wire)
                    return wire
        return self.encode_uncached(ctx)

    def encode_uncached(self, ctx: Negotiated) -> bytes:
        """Header and value computed from the fields (what construction keeps)."""
        if self._HEADER:
            return self._HEADER + self.encode_value(ctx)
        return encode_attribute(self.FLAGS, self.TYPE, self.encode_value(ctx))


#: ``keep_wire(attr, octets)``: store ``octets`` as ``attr``'s own (the slot's setter: attributes are
#: frozen). Construction keeps what it computes; the decoder keeps the octets it read when they are
#: exactly what encoding would give.
keep_wire = PathAttribute.__dict__["_wire"].__set__


def check_u32(name: str, value: int) -> None:
    """Reject values that do not fit four octets."""
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{name} {value} does not fit 32 bits")
