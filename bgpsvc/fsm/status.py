"""The typed status of a peer: one frozen value feeds ``/status``, ``bgpsvc status`` and ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class BfdPeerStatus:
    """A peer's BFD session as an operator sees it (RFC 5880 §6.8.1 variables; intervals in ms, as
    negotiated: what we send at, what we expect the peer to send at, and our detection time)."""

    state: str  # "Up", "Down", "Init", "AdminDown"
    remote_state: str
    #: bfd.LocalDiag: why the session last went down ("control detection time expired" ...).
    diagnostic: str
    tx_interval_ms: float
    rx_interval_ms: float
    detection_time_ms: float
    multiplier: int
    #: Times the session left Up.
    flaps: int
    multihop: bool
    local_address: str | None
    #: The BGP session waits in Idle for BFD to come Up again (RFC 5882).
    holding: bool = False
    #: Anything else worth a word ("waiting for the connection's local address").
    note: str = ""


@dataclass(frozen=True, slots=True)
class PeerStatus:
    """One neighbour as an operator sees it (cf. FRR ``show bgp neighbor``)."""

    name: str
    address: str
    peer_as: int
    local_as: int
    state: str
    #: Seconds in Established, or None.
    uptime: float | None
    last_down: str | None
    prefixes_sent: int
    #: Family name ("ipv4-unicast") -> prefixes the peer announces to us.
    prefixes_received: dict[str, int]
    messages_sent: int
    messages_received: int
    updates_sent: int
    updates_received: int
    hold_time: int | None
    families: tuple[str, ...]
    graceful_shutdown: bool
    #: Desired prefixes this session cannot carry (no next hop of that family).
    unroutable: int
    #: Times the session left Established.
    flaps: int = 0
    #: "code/subcode name" -> NOTIFICATIONs sent / received.
    notifications_sent: dict[str, int] = field(default_factory=dict)
    notifications_received: dict[str, int] = field(default_factory=dict)
    #: RFC 7606 handling ("treat-as-withdraw", "attribute-discard") -> UPDATEs handled so.
    update_errors: dict[str, int] = field(default_factory=dict)
    stale_routes: int = 0
    #: Route class -> prefixes sent (filled by owners that classify prefixes, e.g. the node speaker).
    prefixes_by_class: dict[str, int] = field(default_factory=dict)
    #: The peer's BFD session, when BFD is configured for it.
    bfd: BfdPeerStatus | None = None
