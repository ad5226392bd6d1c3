"""What a session negotiated, as one frozen value passed to encode and decode (RFC 5492 §3)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .constants import MAX_EXTENDED_MESSAGE_SIZE, MAX_MESSAGE_SIZE, Family

#: Attribute encodings the decoder shares per session (``Negotiated.intern_max``) when what it decodes
#: is used and dropped, as a speaker that does not store received routes does: the ORIGIN, NEXT_HOP and
#: common values that repeat in every UPDATE. A bigger table keeps every distinct AS_PATH and community
#: set alive, and CPython's cyclic GC walks each of those objects again and again: on the 200k-prefix
#: full table of bench/codec.py, 2^17 entries took 7.1 us per UPDATE (2.2 of them GC), 2^12 5.2 us.
INTERN_STREAMED = 1 << 12
#: The same for a session that stores what it decodes (an Adj-RIB-In): stored objects are kept alive
#: anyway, so sharing equal ones saves memory (a 1M-prefix full table held in an ``AdjRibIn``: +272 MB
#: with 2^17 entries, +312 MB with 2^12). About 20 MB of keys and objects at worst.
INTERN_STORED = 1 << 17


@dataclass(frozen=True, slots=True)
class Negotiated:
    """Encoding parameters agreed in the OPEN exchange.

    ``add_path_rx``: families whose NLRI we receive with path identifiers (RFC 7911 §3);
    ``add_path_tx``: families whose NLRI we send with them. ``extended_next_hop`` lists the
    (NLRI family, next-hop AFI) pairs of RFC 8950: an IPv6 next hop for IPv4 NLRI received outside
    these pairs makes MP_REACH_NLRI malformed (RFC 8950 §3, RFC 7606 §7.11).
    """

    four_octet_as: bool = True
    extended_message: bool = False
    add_path_rx: frozenset[Family] = field(default_factory=frozenset)
    add_path_tx: frozenset[Family] = field(default_factory=frozenset)
    extended_next_hop: frozenset[tuple[Family, int]] = field(default_factory=frozenset)
    #: The peer is external: LOCAL_PREF, ORIGINATOR_ID and CLUSTER_LIST it sends are discarded
    #: (RFC 7606 §7.5, §7.9, §7.10), confederation segments in its AS_PATH are malformed (RFC 5065 §5).
    ebgp: bool = False
    #: Most distinct attribute encodings the decoder interns for this session (attr_block.py):
    #: ``INTERN_STREAMED``, or ``INTERN_STORED`` when the session stores what it receives.
    intern_max: int = INTERN_STREAMED

    @property
    def max_message_size(self) -> int:
        """Largest message this session may carry (RFC 4271 §4.1, RFC 8654 §4)."""
        return MAX_EXTENDED_MESSAGE_SIZE if self.extended_message else MAX_MESSAGE_SIZE


#: A modern peer: 4-octet AS, no ADD-PATH, 4096-byte messages.
DEFAULT = Negotiated()
#: A peer without the 4-octet AS capability (RFC 6793 "OLD" speaker).
TWO_OCTET = Negotiated(four_octet_as=False)
