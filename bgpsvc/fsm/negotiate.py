"""Building our OPEN and negotiating the session from both OPENs (RFC 4271 §6.2, RFC 5492, RFC 6793)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..wire import (
    AS_TRANS,
    INTERN_STORED,
    INTERN_STREAMED,
    IPV4_UNICAST,
    Capability,
    EnhancedRouteRefresh,
    ExtendedMessage,
    ExtendedNextHop,
    Family,
    FourOctetAs,
    Fqdn,
    GracefulRestart,
    GracefulRestartFamily,
    Multiprotocol,
    Negotiated,
    Open,
    OpenMessageError,
    OpenSubcode,
    RouteRefreshCapability,
)
from .config import SessionConfig


@dataclass(frozen=True, slots=True)
class SessionParams:
    """Everything agreed in the OPEN exchange, as one frozen value."""

    local_open: Open
    peer_open: Open
    peer_as: int
    peer_id: str
    hold_time: int
    keepalive_time: float
    families: tuple[Family, ...]
    ctx: Negotiated
    route_refresh: bool
    enhanced_route_refresh: bool
    #: The peer's graceful restart capability, if it sent one (we are its helper, RFC 4724 §4.2).
    peer_graceful_restart: GracefulRestart | None = None
    extended_next_hop: frozenset[tuple[Family, int]] = field(default_factory=frozenset)

    @property
    def ibgp(self) -> bool:
        """Internal peer."""
        return self.peer_as == self.local_open.asn


def build_open(config: SessionConfig) -> Open:
    """Our OPEN: 4-octet AS always (RFC 6793 §3), one Multiprotocol per family, options per config."""
    caps: list[Capability] = [Multiprotocol(f.afi, f.safi) for f in config.peer.families]
    if config.peer.route_refresh:
        caps.append(RouteRefreshCapability())
    if config.peer.enhanced_route_refresh:
        caps.append(EnhancedRouteRefresh())
    if config.peer.extended_message:
        caps.append(ExtendedMessage())
    if config.peer.extended_next_hop:
        caps.append(ExtendedNextHop(((1, 1, 2),)))
    gr = config.graceful_restart
    if gr is not None:
        fams = tuple(GracefulRestartFamily(f.afi, f.safi, gr.forwarding) for f in config.peer.families)
        caps.append(GracefulRestart(gr.restart_time, gr.restarting, gr.notification, fams))
    if config.hostname:
        caps.append(Fqdn(config.hostname[:64], ""))
    caps.append(FourOctetAs(config.local_as))
    my_as = config.local_as if config.local_as <= 0xFFFF else AS_TRANS
    return Open(my_as, config.peer.hold_time, config.router_id, tuple(caps))


def negotiate(config: SessionConfig, local: Open, peer: Open) -> SessionParams:
    """Check the peer's OPEN against our configuration and agree parameters (RFC 4271 §6.2).

    Raises ``OpenMessageError`` with the RFC's subcode: Bad Peer AS (2), Bad BGP Identifier (3).
    """
    four = peer.get(FourOctetAs)
    if four is not None:
        peer_as = four.asn
        if peer.my_as not in (AS_TRANS, peer_as):
            raise OpenMessageError(
                OpenSubcode.BAD_PEER_AS,
                peer.my_as.to_bytes(2, "big"),
                f"My AS {peer.my_as} disagrees with 4-octet AS {peer_as}",
            )
    else:
        peer_as = peer.my_as
        if peer_as == AS_TRANS:
            raise OpenMessageError(
                OpenSubcode.BAD_PEER_AS,
                peer.my_as.to_bytes(2, "big"),
                "AS_TRANS without the 4-octet AS capability",
            )
    if peer_as != config.peer.peer_as:
        raise OpenMessageError(
            OpenSubcode.BAD_PEER_AS,
            peer.my_as.to_bytes(2, "big"),
            f"peer AS {peer_as}, expected {config.peer.peer_as}",
        )
    if config.ibgp and peer.bgp_id == config.router_id:
        # RFC 6286 §2.2: within an AS the identifiers must differ.
        raise OpenMessageError(
            OpenSubcode.BAD_BGP_IDENTIFIER,
            peer.bgp_id.packed,
            f"iBGP peer uses our BGP identifier {peer.bgp_id}",
        )
    hold = min(config.peer.hold_time, peer.hold_time)
    peer_fams = {c.family for c in peer.get_all(Multiprotocol)}
    if not peer_fams:
        peer_fams = {IPV4_UNICAST}  # RFC 4760 §8 / RFC 4271: no capability means IPv4 unicast
    families = tuple(f for f in config.peer.families if f in peer_fams)
    rr = config.peer.route_refresh and peer.get(RouteRefreshCapability) is not None
    err = config.peer.enhanced_route_refresh and peer.get(EnhancedRouteRefresh) is not None
    ext_msg = config.peer.extended_message and peer.get(ExtendedMessage) is not None
    enh: frozenset[tuple[Family, int]] = frozenset()
    peer_enh = peer.get(ExtendedNextHop)
    if config.peer.extended_next_hop and peer_enh is not None:
        enh = frozenset((Family(a, s), nh) for a, s, nh in peer_enh.entries if (a, s, nh) == (1, 1, 2))
    ctx = Negotiated(
        four_octet_as=four is not None,
        extended_message=ext_msg,
        extended_next_hop=enh,
        ebgp=peer_as != config.local_as,
        intern_max=INTERN_STORED if config.peer.store_routes else INTERN_STREAMED,
    )
    return SessionParams(
        local_open=local,
        peer_open=peer,
        peer_as=peer_as,
        peer_id=str(peer.bgp_id),
        hold_time=hold,
        # RFC 4271 §4.4: at most a third of the hold time; a configured interval applies below that.
        keepalive_time=min(hold / 3, config.peer.keepalive_time or hold / 3),
        families=families,
        ctx=ctx,
        route_refresh=rr or err,
        enhanced_route_refresh=err,
        peer_graceful_restart=peer.get(GracefulRestart),
        extended_next_hop=enh,
    )
