"""UPDATE messages (RFC 4271 §4.3) with revised error handling (RFC 7606) and End-of-RIB (RFC 4724 §2).

Theory of operation: ``decode_attributes`` (attr_block.py) turns the path attributes field into good
attributes and a list of ``UpdateMessageError``, each with its RFC 7606 handling; they fold with
``max()``. Session-reset and AFI/SAFI-disable raise. Treat-as-withdraw returns an ``Update`` whose
reachable prefixes have been moved to the withdrawn side, and attribute-discard returns one without the
bad attributes; either way ``Update.errors`` says what happened, one entry per problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from struct import Struct

from .attr_base import PathAttribute
from .attr_block import (
    Lead,
    clear_interned,
    decode_attributes,
    decode_block,
    encode_attributes,
    interned_for,
    reaches,
)
from .constants import HEADER_SIZE, IPV4_UNICAST, AttrType, Family, MessageType
from .errors import Handling, UpdateMessageError, UpdateSubcode
from .header import frame
from .mp import MpReachNlri, MpUnreachNlri
from .negotiated import DEFAULT, Negotiated
from .prefix import Prefix, decode_prefix_tuple, encode_prefixes

__all__ = [
    "Update",
    "clear_cache",
    "decode_attributes",
    "decode_update",
    "encode_attributes",
    "encode_update",
]

_U16 = Struct(">H")
_UPDATE = MessageType.UPDATE


@dataclass(frozen=True, slots=True)
class Update:
    """An UPDATE (RFC 4271 §4.3): IPv4 unicast in the classic fields, other families in MP attributes."""

    withdrawn: tuple[Prefix, ...] = ()
    attributes: tuple[PathAttribute, ...] = ()
    nlri: tuple[Prefix, ...] = ()
    #: Non-fatal RFC 7606 outcomes found while decoding, one per problem, each naming the attribute,
    #: handling, RFC section and reason (``UpdateMessageError.summary``); not part of equality.
    errors: tuple[UpdateMessageError, ...] = field(default=(), compare=False)

    TYPE = _UPDATE

    def __post_init__(self) -> None:
        for p in self.withdrawn:
            if p[0] != 1:
                raise ValueError(f"classic withdrawn routes are IPv4 only, got {p}")
        for p in self.nlri:
            if p[0] != 1:
                raise ValueError(f"classic NLRI are IPv4 only, got {p}")

    def get(self, cls: type[PathAttribute]) -> PathAttribute | None:
        """The attribute of ``cls``'s type, if present."""
        for a in self.attributes:
            if a.type_code == cls.TYPE:
                return a
        return None

    @property
    def handling(self) -> Handling | None:
        """Strongest RFC 7606 handling applied while decoding, or None if the message was clean."""
        return max((e.handling for e in self.errors), default=None)

    def announced(self) -> list[tuple[Family, Prefix]]:
        """Every reachable prefix with its family (classic NLRI and MP_REACH_NLRI)."""
        out = [(IPV4_UNICAST, p) for p in self.nlri]
        for a in self.attributes:
            if isinstance(a, MpReachNlri):
                out += a.routes()
        return out

    def withdrawals(self) -> list[tuple[Family, Prefix]]:
        """Every withdrawn prefix with its family (classic field and MP_UNREACH_NLRI)."""
        out = [(IPV4_UNICAST, p) for p in self.withdrawn]
        for a in self.attributes:
            if isinstance(a, MpUnreachNlri):
                out += a.routes()
        return out

    @property
    def end_of_rib(self) -> Family | None:
        """The family this UPDATE marks End-of-RIB for, if it is one (RFC 4724 §2)."""
        if self.withdrawn or self.nlri:
            return None
        if not self.attributes:
            return IPV4_UNICAST
        if len(self.attributes) == 1:
            a = self.attributes[0]
            if isinstance(a, MpUnreachNlri) and not a.withdrawn:
                return a.family
        return None


def end_of_rib(family: Family = IPV4_UNICAST) -> Update:
    """The End-of-RIB marker for ``family`` (RFC 4724 §2)."""
    if family == IPV4_UNICAST:
        return Update()
    return Update(attributes=(MpUnreachNlri(family.afi, family.safi, ()),))


def encode_update(update: Update, ctx: Negotiated = DEFAULT) -> bytes:
    """One UPDATE message; raises ``ValueError`` if it exceeds the negotiated size (use ``pack_updates``)."""
    add_path = IPV4_UNICAST in ctx.add_path_tx
    withdrawn = encode_prefixes(update.withdrawn, add_path)
    attrs = encode_attributes(update.attributes, ctx)
    body = b"".join(
        (
            _U16.pack(len(withdrawn)),
            withdrawn,
            _U16.pack(len(attrs)),
            attrs,
            encode_prefixes(update.nlri, add_path),
        )
    )
    if HEADER_SIZE + len(body) > ctx.max_message_size:
        raise ValueError(f"UPDATE of {HEADER_SIZE + len(body)} octets exceeds {ctx.max_message_size}")
    return frame(_UPDATE, body)


# Decoded attribute blocks, per Negotiated object, keyed by their bytes, one dict for UPDATEs with
# classic NLRI and one for those without (the mandatory attributes differ). A table transfer repeats
# the same block in every UPDATE; sharing one frozen result saves both time and memory. Only blocks
# that decoded without errors are kept, as the bare attributes tuple (a (attrs, errors) pair was one
# more GC-tracked object per cached block). Each entry also holds the session's intern table and its
# ``Lead`` (attr_block.decode_block).
# A block is admitted when it comes again right after itself (``_LAST_BLOCK``), as a large attribute
# set sent in many UPDATEs does: a full table, mostly one UPDATE per set, then stores nothing that
# never hits, keeps no GC-tracked survivors for it, and decodes in 6.8 where it took 7.5 us per UPDATE.
_Blocks = dict[bytes, tuple[PathAttribute, ...]]
_Caches = tuple[Negotiated, _Blocks, _Blocks, dict[bytes, PathAttribute], Lead]
_CACHE: dict[int, _Caches] = {}
_CACHE_MAX = 4096
#: The attribute block of the UPDATE decoded last, if it missed the cache (any session: a block is
#: only ever stored in the cache of the session that decoded it).
_LAST_BLOCK = b""
#: MP_REACH_NLRI and MP_UNREACH_NLRI in decode_block's mask of the type codes seen.
_MP_BITS = (1 << AttrType.MP_REACH_NLRI) | (1 << AttrType.MP_UNREACH_NLRI)


def _caches_for(ctx: Negotiated) -> _Caches:
    """The caches of ``ctx``, which become ``_LAST_CACHES``."""
    global _LAST_CACHES  # noqa: PLW0603
    # Keyed by identity: hashing a Negotiated for every UPDATE would cost more than the lookup saves.
    entry = _CACHE.get(id(ctx))
    if entry is None or entry[0] is not ctx:
        if len(_CACHE) > 64:
            _CACHE.clear()
        entry = _CACHE[id(ctx)] = (ctx, {}, {}, interned_for(ctx), Lead())
    _LAST_CACHES = entry
    return entry


#: Caches of no session (a Negotiated of its own), what ``_LAST_CACHES`` starts as.
_NO_CACHES: _Caches = (Negotiated(), {}, {}, {}, Lead())
#: The caches of the session that decoded last: UPDATEs come in runs from one session, and this
#: spares a dict lookup per UPDATE (2% of a distinct-case UPDATE's instructions).
_LAST_CACHES = _NO_CACHES


def clear_cache() -> None:
    """Forget decoded attribute blocks and interned attributes (benchmarks start cold with this)."""
    global _LAST_BLOCK, _LAST_CACHES  # noqa: PLW0603
    _LAST_BLOCK = b""
    _LAST_CACHES = _NO_CACHES
    _CACHE.clear()
    clear_interned()


def decode_update(body: bytes, ctx: Negotiated = DEFAULT, start: int = 0) -> Update:
    """Decode an UPDATE body (after the header), applying RFC 7606; raises ``UpdateMessageError`` to reset.

    ``start``: where the body begins in ``body``. ``framing.decode`` passes a whole message and
    ``HEADER_SIZE``, which spares a copy of the body: 2.5% of the instructions of an UPDATE of
    bench/codec.py's distinct case (bench/codec_instructions.py).
    """
    global _LAST_BLOCK  # noqa: PLW0603
    n = len(body)
    if n < start + 4:
        raise UpdateMessageError(UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", "UPDATE too short")
    w = start + 2  # the withdrawn routes
    a = w + 2 + ((body[start] << 8) | body[start + 1])  # the path attributes
    if a > n:
        raise UpdateMessageError(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", "withdrawn routes length overruns"
        )
    end = a + ((body[a - 2] << 8) | body[a - 1])  # of the path attributes field
    if end > n:
        raise UpdateMessageError(
            UpdateSubcode.MALFORMED_ATTRIBUTE_LIST, b"", "path attribute length overruns"
        )
    add_path = IPV4_UNICAST in ctx.add_path_rx if ctx.add_path_rx else False
    withdrawn = decode_prefix_tuple(body[w : a - 2], 1, add_path) if a - 2 > w else ()
    nlri = decode_prefix_tuple(body[end:], 1, add_path) if end < n else ()
    block = body[a:end]
    has_nlri = end < n  # decode_prefix_tuple raises rather than return nothing
    caches = _LAST_CACHES
    if caches[0] is not ctx:
        caches = _caches_for(ctx)
    cache = caches[1] if has_nlri else caches[2]
    # An empty cache (a full table, or distinct sets: no block comes twice in a row) is not looked
    # up: that spares hashing the block, 1% of the instructions of a distinct-case UPDATE.
    attrs = cache.get(block) if cache else None
    if attrs is None:
        attrs, errs, seen = decode_block(block, ctx, has_nlri, caches[3], caches[4])
        if block != _LAST_BLOCK:
            _LAST_BLOCK = block
        elif not errs and not seen & _MP_BITS:
            # MP attributes carry NLRI, which differ per message: caching those blocks would churn.
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[block] = attrs
    else:
        errs = ()
    if not errs:
        # _trusted, inlined: this is the path of nearly every UPDATE received.
        u = _new(Update)
        _SET_WITHDRAWN(u, withdrawn)
        _SET_ATTRIBUTES(u, attrs)
        _SET_NLRI(u, nlri)
        _SET_ERRORS(u, ())
        return u
    worst = max(errs, key=lambda e: e.handling)
    if worst.handling >= Handling.AFI_SAFI_DISABLE:
        raise worst
    if worst.handling == Handling.TREAT_AS_WITHDRAW and not has_nlri and not reaches(attrs):
        # RFC 7606 §5.2: with no reachable NLRI there is nothing to treat as withdrawn, so any error
        # stronger than attribute-discard resets the session.
        raise UpdateMessageError(
            worst.subcode,
            worst.data,
            worst.reason,
            Handling.SESSION_RESET,
            worst.attr_type,
            rfc=f"{worst.rfc}, RFC 7606 §5.2",
        )
    if worst.handling == Handling.TREAT_AS_WITHDRAW:
        return _treat_as_withdraw(withdrawn, attrs, nlri, errs)
    return _trusted(withdrawn, attrs, nlri, errs)


def _trusted(
    withdrawn: tuple[Prefix, ...],
    attrs: tuple[PathAttribute, ...],
    nlri: tuple[Prefix, ...],
    errors: tuple[UpdateMessageError, ...],
) -> Update:
    # The decoder has already checked every field; skip __post_init__'s per-prefix walk.
    u = _new(Update)
    _SET_WITHDRAWN(u, withdrawn)
    _SET_ATTRIBUTES(u, attrs)
    _SET_NLRI(u, nlri)
    _SET_ERRORS(u, errors)
    return u


# Slot setters for _trusted: what the dataclass __init__ does underneath, without its checks.
_new = object.__new__
_SET_WITHDRAWN = Update.__dict__["withdrawn"].__set__
_SET_ATTRIBUTES = Update.__dict__["attributes"].__set__
_SET_NLRI = Update.__dict__["nlri"].__set__
_SET_ERRORS = Update.__dict__["errors"].__set__


def _treat_as_withdraw(
    withdrawn: tuple[Prefix, ...],
    attrs: tuple[PathAttribute, ...],
    nlri: tuple[Prefix, ...],
    errors: tuple[UpdateMessageError, ...],
) -> Update:
    """RFC 7606 §2: every prefix the UPDATE names becomes a withdrawal; no attributes survive."""
    by_family: dict[Family, list[Prefix]] = {}
    for a in attrs:
        if isinstance(a, (MpReachNlri, MpUnreachNlri)):
            by_family.setdefault(a.family, []).extend(a.prefixes)
    mp = tuple(MpUnreachNlri(f.afi, f.safi, tuple(p)) for f, p in by_family.items())
    return _trusted(withdrawn + nlri, mp, (), errors)
