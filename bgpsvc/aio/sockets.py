"""Socket options for BGP transport on Linux: TCP MD5 (RFC 2385), GTSM (RFC 5082), TTL and binding."""

from __future__ import annotations

import ipaddress
import socket
import struct

TCP_MD5SIG = getattr(socket, "TCP_MD5SIG", 14)
IP_MINTTL = getattr(socket, "IP_MINTTL", 21)
IPV6_MINHOPCOUNT = getattr(socket, "IPV6_MINHOPCOUNT", 73)
_SOCKADDR_STORAGE = 128
_MD5_MAX_KEY = 80  # TCP_MD5SIG_MAXKEYLEN


def md5sig(peer: str, password: str | None) -> bytes:
    """A ``struct tcp_md5sig`` for ``peer`` (an empty key removes it)."""
    ip = ipaddress.ip_address(peer)
    key = (password or "").encode()
    if len(key) > _MD5_MAX_KEY:
        raise ValueError(f"password: TCP MD5 keys are at most {_MD5_MAX_KEY} bytes")
    if ip.version == 4:
        addr = struct.pack("=H", socket.AF_INET) + struct.pack("!H", 0) + ip.packed
    else:
        addr = (
            struct.pack("=H", socket.AF_INET6) + struct.pack("!HI", 0, 0) + ip.packed + struct.pack("=I", 0)
        )
    return (
        addr.ljust(_SOCKADDR_STORAGE, b"\0") + struct.pack("=BBHi", 0, 0, len(key), 0) + key.ljust(80, b"\0")
    )


def set_md5(sock: socket.socket, peer: str, password: str | None) -> None:
    """Sign (and require signatures on) segments to/from ``peer`` (RFC 2385)."""
    sock.setsockopt(socket.IPPROTO_TCP, TCP_MD5SIG, md5sig(peer, password))


def set_ttl(sock: socket.socket, ttl: int, min_ttl: int | None = None) -> None:
    """Outgoing TTL/hop limit and, for GTSM, the minimum accepted on receipt (RFC 5082 §3)."""
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
        if min_ttl is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MINHOPCOUNT, min_ttl)
    else:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
        if min_ttl is not None:
            sock.setsockopt(socket.IPPROTO_IP, IP_MINTTL, min_ttl)


def gtsm_min_ttl(hops: int = 1) -> int:
    """GTSM: a peer ``hops`` away sends with TTL 255, so accept only 255 - (hops - 1) and up."""
    return 256 - hops


def tcp_socket(peer: str, local: str | None = None, password: str | None = None) -> socket.socket:
    """A non-blocking TCP socket of the peer's family, MD5 set and bound to ``local`` if given."""
    family = socket.AF_INET6 if ipaddress.ip_address(peer).version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if password:
            set_md5(sock, peer, password)
        if local:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((local, 0))
    except BaseException:
        sock.close()
        raise
    return sock
