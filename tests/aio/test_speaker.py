"""The asyncio speaker on loopback: collisions, refusing strangers, one bad peer never hurting another."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig
from bgpsvc.fsm import EndOfRibReceived, SessionDown, SessionUp, State, UpdateReceived
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import IPV4_UNICAST, Keepalive, Notification, Open, Prefix, encode, split_messages
from tests.loopback import free_port, wait_for


def test_simultaneous_open_resolves_to_one_stable_session() -> None:
    async def main() -> None:
        port = free_port()
        a = Speaker(
            SpeakerConfig(
                64512,
                "192.0.2.1",
                listen=(("127.0.0.1", port),),
                peers=(
                    PeerConfig(
                        "127.0.0.2",
                        64513,
                        port=port,
                        local_address="127.0.0.1",
                        connect_retry_time=0.5,
                        families=(IPV4_UNICAST,),
                    ),
                ),
            )
        )
        b = Speaker(
            SpeakerConfig(
                64513,
                "192.0.2.2",
                listen=(("127.0.0.2", port),),
                peers=(
                    PeerConfig(
                        "127.0.0.1",
                        64512,
                        port=port,
                        local_address="127.0.0.2",
                        connect_retry_time=0.5,
                        families=(IPV4_UNICAST,),
                    ),
                ),
            )
        )
        ups: dict[str, int] = {"a": 0, "b": 0}
        downs: list[SessionDown] = []

        async def watch(sp: Speaker, name: str) -> None:
            async for ev in sp.events():
                if isinstance(ev.event, SessionUp):
                    ups[name] += 1
                elif isinstance(ev.event, SessionDown) and ev.event.was_established:
                    downs.append(ev.event)

        tasks = [asyncio.create_task(watch(a, "a")), asyncio.create_task(watch(b, "b"))]
        # Both connect to each other at the same moment: RFC 4271 §6.8 must leave exactly one session.
        await asyncio.gather(a.start(), b.start())
        await a.wait_established(15)
        await b.wait_established(15)
        a.set_routes({Prefix.from_network("198.51.100.0/24"): RouteAttrs()})
        await asyncio.sleep(2.0)
        assert a.drivers[0].peer.session.established and b.drivers[0].peer.session.established
        assert ups == {"a": 1, "b": 1} and downs == []
        assert b.drivers[0].peer.session.received[IPV4_UNICAST] == {Prefix.from_network("198.51.100.0/24")}
        await a.stop(0)
        await b.stop(0)
        for t in tasks:
            t.cancel()

    asyncio.run(main())


def test_unconfigured_peer_is_closed_before_a_single_byte() -> None:
    async def main() -> None:
        port = free_port()
        sp = Speaker(
            SpeakerConfig(
                64512,
                "192.0.2.1",
                listen=(("127.0.0.1", port),),
                peers=(PeerConfig("127.0.0.2", 64513, port=port, passive=True),),
            )
        )
        await sp.start()
        loop = asyncio.get_running_loop()

        def stranger() -> bytes:
            with socket.create_connection(
                ("127.0.0.1", port), timeout=5, source_address=("127.0.0.9", 0)
            ) as s:
                s.settimeout(5)
                try:
                    return s.recv(100)
                except ConnectionResetError:
                    return b""

        assert await loop.run_in_executor(None, stranger) == b""  # closed; no OPEN was sent
        await sp.stop(0)

    asyncio.run(main())


def test_a_misbehaving_peer_never_disturbs_another() -> None:
    async def main() -> None:
        port = free_port()
        sp = Speaker(
            SpeakerConfig(
                64512,
                "192.0.2.1",
                listen=(("127.0.0.1", port),),
                peers=(
                    PeerConfig("127.0.0.2", 64513, port=port, passive=True, families=(IPV4_UNICAST,)),
                    PeerConfig("127.0.0.3", 64514, port=port, passive=True, families=(IPV4_UNICAST,)),
                ),
            )
        )
        good = Speaker(
            SpeakerConfig(
                64513,
                "192.0.2.2",
                listen=(),
                peers=(
                    PeerConfig(
                        "127.0.0.1",
                        64512,
                        port=port,
                        local_address="127.0.0.2",
                        connect_retry_time=0.5,
                        families=(IPV4_UNICAST,),
                    ),
                ),
            )
        )
        await sp.start()
        sp.set_routes({Prefix.from_network("198.51.100.0/24"): RouteAttrs()})
        await good.start()
        await good.wait_established(15)
        loop = asyncio.get_running_loop()

        def bad_peer(payload: bytes) -> list[object]:
            with socket.create_connection(
                ("127.0.0.1", port), timeout=5, source_address=("127.0.0.3", 0)
            ) as s:
                s.settimeout(5)
                s.sendall(encode(Open.build(64514, 90, "192.0.2.3")) + encode(Keepalive()) + payload)
                data = b""
                while True:
                    try:
                        chunk = s.recv(65536)
                    except (ConnectionResetError, TimeoutError):
                        break
                    if not chunk:
                        break
                    data += chunk
                return list(split_messages(data))

        for payload in (b"\x00" * 40, b"\xff" * 16 + b"\x00\x17\x02" + b"\x00\x09\x00\x00"):
            # After a failure the peer sits in Idle for its (damped) idle hold time, refusing connections.
            await wait_for(
                lambda: sp.drivers[1].peer.session.state is State.ACTIVE, 10, "bad peer's FSM back in Active"
            )
            msgs = await loop.run_in_executor(None, bad_peer, payload)
            notes = [m for m in msgs if isinstance(m, Notification)]
            assert notes and notes[-1].code in (1, 3), msgs  # the RFC's NOTIFICATION, then close
            runner = good.drivers[0].peer
            assert runner.session.established
            assert runner.session.received[IPV4_UNICAST] == {Prefix.from_network("198.51.100.0/24")}
        sp.announce("203.0.113.0/24")
        await wait_for(
            lambda: len(good.drivers[0].peer.session.received[IPV4_UNICAST]) == 2, 5, "routes keep flowing"
        )
        await good.stop(0)
        await sp.stop(0)

    asyncio.run(main())


@pytest.mark.parametrize("drain", [0.0, 30.0])
def test_zero_drain_or_a_second_stop_skips_the_wait(drain: float) -> None:
    async def main() -> None:
        port = free_port()
        a = Speaker(
            SpeakerConfig(
                64512,
                "192.0.2.1",
                listen=(("127.0.0.1", port),),
                drain_time=drain,
                peers=(PeerConfig("127.0.0.2", 64513, port=port, passive=True, families=(IPV4_UNICAST,)),),
            )
        )
        b = Speaker(
            SpeakerConfig(
                64513,
                "192.0.2.2",
                listen=(),
                peers=(
                    PeerConfig(
                        "127.0.0.1",
                        64512,
                        port=port,
                        local_address="127.0.0.2",
                        connect_retry_time=0.5,
                        families=(IPV4_UNICAST,),
                    ),
                ),
            )
        )
        await a.start()
        await b.start()
        await b.wait_established(15)
        t0 = time.monotonic()
        first = asyncio.create_task(a.stop())
        await asyncio.sleep(0.2)
        if drain:
            await a.stop()  # the second stop (second SIGTERM) ends the drain now
        await asyncio.wait_for(first, 5)
        assert time.monotonic() - t0 < 3
        await b.stop(0)

    asyncio.run(main())


def test_a_held_first_table_released_right_after_set_routes_is_whole_before_end_of_rib() -> None:
    """The node speaker sets its routes and releases the first table in one step: the End-of-RIB must
    follow the whole set, or a graceful-restart helper flushes the routes it kept (RFC 4724 §4.2)."""

    async def main() -> None:
        port = free_port()
        collector = Speaker(
            SpeakerConfig(
                64500,
                "192.0.2.1",
                listen=(("127.0.0.1", port),),
                peers=(PeerConfig("127.0.0.2", 64512, port=port, passive=True, store_routes=True),),
            )
        )
        node = Speaker(
            SpeakerConfig(
                64512,
                "192.0.2.2",
                peers=(
                    PeerConfig(
                        "127.0.0.1", 64500, port=port, local_address="127.0.0.2", connect_retry_time=0.5
                    ),
                ),
            ),
            hold_initial=True,
        )
        before_eor: set[Prefix] = set()
        eor = asyncio.Event()

        async def watch() -> None:
            async for ev in collector.events():
                if isinstance(ev.event, UpdateReceived) and not eor.is_set():
                    before_eor.update(p for _, p in ev.event.update.announced())
                elif isinstance(ev.event, EndOfRibReceived):
                    eor.set()

        task = asyncio.create_task(watch())
        await collector.start()
        await node.start()
        node.set_routes({"198.51.100.0/24": RouteAttrs()})  # the static routes, known at start
        await node.wait_established(15)
        await asyncio.sleep(0.2)
        table = {Prefix.from_network(f"203.0.113.{i}/32"): RouteAttrs() for i in range(8)}
        node.set_routes({Prefix.from_network("198.51.100.0/24"): RouteAttrs(), **table})  # first reconcile
        node.release_initial()
        await asyncio.wait_for(eor.wait(), 10)
        assert before_eor == {Prefix.from_network("198.51.100.0/24"), *table}
        await node.stop(0)
        await collector.stop(0)
        task.cancel()

    asyncio.run(main())
