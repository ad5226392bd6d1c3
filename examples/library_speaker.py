"""bgpsvc as a library: announce routes to a BGP peer and watch session events.

Self-contained by default: a second in-process speaker on loopback plays the router, so this runs
anywhere without root. Point it at a real router with --peer/--peer-as (and --port 179 as root).

    .venv/bin/python examples/library_speaker.py
    .venv/bin/python examples/library_speaker.py --peer 192.0.2.254 --peer-as 64500 --local-as 64512
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig
from bgpsvc.fsm import SessionDown, SessionUp, UpdateReceived
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import Community, Prefix, community


async def main(args: argparse.Namespace) -> None:
    me = Speaker(
        SpeakerConfig(
            local_as=args.local_as,
            router_id="192.0.2.1",
            listen=(),
            drain_time=1.0,
            peers=(
                PeerConfig(
                    args.peer,
                    args.peer_as,
                    port=args.port,
                    local_address=args.local_address,
                    connect_retry_time=1.0,
                ),
            ),
        )
    )
    router = None
    if args.peer.startswith("127."):
        # The stand-in router: listens where we connect, keeps what it receives.
        router = Speaker(
            SpeakerConfig(
                local_as=args.peer_as,
                router_id="192.0.2.254",
                listen=((args.peer, args.port),),
                peers=(
                    PeerConfig(
                        args.local_address or "127.0.0.1", args.local_as, passive=True, store_routes=True
                    ),
                ),
            )
        )
        await router.start()
    await me.start()

    # The whole desired set, as a mapping; later calls send only differences.
    me.set_routes(
        {
            Prefix.from_network("198.51.100.0/24"): RouteAttrs(med=10, communities=(community("64512:100"),)),
            Prefix.host("203.0.113.10"): RouteAttrs(communities=(Community.NO_EXPORT,)),
            Prefix.from_network("2001:db8:10::/48"): RouteAttrs(),
        }
    )

    async def watch(speaker: Speaker, who: str) -> None:
        async for ev in speaker.events():
            e = ev.event
            if isinstance(e, SessionUp):
                print(
                    f"[{who}] session with {ev.peer} up: hold {e.params.hold_time}s, "
                    f"families {[str(f) for f in e.params.families]}"
                )
            elif isinstance(e, SessionDown):
                print(f"[{who}] session with {ev.peer} down: {e.reason}")
            elif isinstance(e, UpdateReceived):
                u = e.update
                if u.end_of_rib:
                    print(f"[{who}] End-of-RIB {u.end_of_rib}")
                for fam, p in u.announced():
                    print(f"[{who}] + {p} ({fam})")
                for fam, p in u.withdrawals():
                    print(f"[{who}] - {p} ({fam})")

    tasks = [asyncio.create_task(watch(me, "speaker"))]
    if router is not None:
        tasks.append(asyncio.create_task(watch(router, "router")))
    await me.wait_established(30)
    await asyncio.sleep(0.5)
    me.withdraw(Prefix.host("203.0.113.10"))  # one route goes ...
    me.announce("198.51.100.128/25", RouteAttrs(med=5))  # ... another arrives
    await asyncio.sleep(0.5)
    await me.stop(message="example finished")  # RFC 8326 graceful shutdown, then Cease
    await asyncio.sleep(0.2)
    if router is not None:
        await router.stop(0)
    for t in tasks:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="127.0.0.2", help="router address (default: in-process stand-in)")
    ap.add_argument("--peer-as", type=int, default=64500)
    ap.add_argument("--local-as", type=int, default=64512)
    ap.add_argument("--local-address", default=None)
    ap.add_argument("--port", type=int, default=11179)
    a = ap.parse_args()
    if a.peer.startswith("127.") and a.local_address is None:
        a.local_address = "127.0.0.1"
    ipaddress.ip_address(a.peer)
    asyncio.run(main(a))
