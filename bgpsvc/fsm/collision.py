"""Connection collision resolution (RFC 4271 §6.8, RFC 6286 §2.3), as a pure decision."""

from __future__ import annotations

import ipaddress


def keep_existing(
    local_id: ipaddress.IPv4Address,
    remote_id: ipaddress.IPv4Address,
    existing_outgoing: bool,
    local_as: int = 0,
    remote_as: int = 0,
) -> bool:
    """Whether the existing connection survives a collision with a new incoming one.

    RFC 4271 §6.8: the connection initiated by the speaker with the higher BGP Identifier is kept; with
    equal identifiers (possible between ASes, RFC 6286 §2.3) the one initiated by the larger AS. When
    the existing connection was the peer's as well, the peer opened a second one, so the first is stale
    (a restart on its side): the new one is kept.
    """
    if not existing_outgoing:
        return False
    if local_id != remote_id:
        return local_id > remote_id
    return local_as > remote_as
