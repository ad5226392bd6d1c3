"""The BGP listener: accepts connections and hands each to its peer's driver, refusing strangers."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable
from typing import Protocol

from ..fsm import PeerConfig
from .sockets import set_md5

log = logging.getLogger("bgpsvc.speaker")
#: Pending connections the kernel queues for us (listen(2) backlog).
BACKLOG = 64


class Acceptor(Protocol):
    """What the listener hands a matched connection to."""

    def accept(self, sock: socket.socket) -> None: ...


class Listener:
    """Listening sockets for the configured addresses; TCP MD5 keys set per peer (RFC 2385)."""

    def __init__(self, lookup: Callable[[str], Acceptor | None], refusing: Callable[[], bool]) -> None:
        self._lookup = lookup
        self._refusing = refusing
        self._socks: list[socket.socket] = []
        self._keyed: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def open(self, listen: tuple[tuple[str, int], ...], peers: tuple[PeerConfig, ...]) -> None:
        """Bind and listen; raises ``OSError`` naming the address when that fails."""
        loop = asyncio.get_running_loop()
        try:
            for host, port in listen:
                self._socks.append(self._bind(host, port, peers))
        except OSError:
            self.close()
            raise
        self._keyed = {p.address for p in peers if p.password}
        for lsock in self._socks:
            self._tasks.append(loop.create_task(self._accept_loop(lsock)))

    @staticmethod
    def _bind(host: str, port: int, peers: tuple[PeerConfig, ...]) -> socket.socket:
        version = ipaddress.ip_address(host).version
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        lsock = socket.socket(family, socket.SOCK_STREAM)
        try:
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                lsock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            for peer in peers:
                if peer.password and ipaddress.ip_address(peer.address).version == version:
                    set_md5(lsock, peer.address, peer.password)
            lsock.bind((host, port))
            lsock.listen(BACKLOG)
            lsock.setblocking(False)
        except OSError as exc:
            lsock.close()
            raise OSError(exc.errno, f"listen on [{host}]:{port}: {exc.strerror}") from None
        return lsock

    def set_passwords(self, peers: tuple[PeerConfig, ...]) -> None:
        """Keys for a changed peer set; keys of peers gone or without a password are cleared."""
        keys = {p.address: p.password for p in peers if p.password}
        for lsock in self._socks:
            version = 6 if lsock.family == socket.AF_INET6 else 4
            for address in {*keys, *self._keyed}:
                if ipaddress.ip_address(address).version == version:
                    set_md5(lsock, address, keys.get(address))
        self._keyed = set(keys)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """Where we listen (useful with port 0)."""
        return [s.getsockname()[:2] for s in self._socks]

    async def _accept_loop(self, lsock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(lsock)
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            target = self._lookup(addr[0])
            if target is None or self._refusing():
                # Not a configured peer: closed before a single BGP byte is read.
                log.info("refused connection from unconfigured %s", addr[0])
                sock.close()
                continue
            sock.setblocking(False)
            target.accept(sock)

    def close(self) -> None:
        """Stop accepting and close the sockets."""
        for t in self._tasks:
            t.cancel()
        for lsock in self._socks:
            lsock.close()
        self._tasks.clear()
        self._socks.clear()
