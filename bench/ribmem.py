"""What a route costs inside bgpsvc: bytes per route and CPU per route, sender and receiver, no network.

The same code a running speaker runs, without sockets: the routes file parser, then two sans-IO
``Peer``s joined in memory (``tests/fsm/wire_pair.py``). The sender A loads N IPv4 /32s from a routes
file's text (the ``bgpsvc run`` path), reaches Established with B and streams its first table in
chunks (``Peer.handle_timer``/``data_to_send``, as the asyncio driver calls them); B decodes every UPDATE
and stores it in its Adj-RIB-In (``store_routes``). Reported per N:

* **CPU** (``time.process_time``): parse, sender stream (A's work only: B is fed afterwards), receiver
  decode+store; and per route.
* **bytes per route** (``tracemalloc``, a second pass): what stays allocated after the stream, per
  route, for the sender's desired set + Adj-RIB-Out and for the receiver's Adj-RIB-In; and the biggest
  allocation sites (the breakdown).
* with ``--profile``, a cProfile of the sender's stream: where its CPU goes.

No peer routers here (that is ``bench/transfer.py``, which measures the same speaker against FRR, BIRD,
GoBGP and ExaBGP over TCP, with their RSS): this isolates bgpsvc's own cost from the network and the
receiver.

    .venv/bin/python bench/ribmem.py [--sizes 100000,300000,1000000] [--profile] [--top 8] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import pstats
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bgpsvc.app.routes import parse_routes_file  # noqa: E402
from bgpsvc.fsm import Peer, SessionConfig  # noqa: E402
from bgpsvc.rib import RouteAttrs  # noqa: E402
from bgpsvc.wire import IPV4_UNICAST, Prefix  # noqa: E402
from tests.fsm.wire_pair import Net  # noqa: E402


def routes_text(n: int) -> str:
    """N consecutive /32s from 10.0.0.0/8, one per line (NLRI only: nothing is installed anywhere)."""
    return "".join(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32\n" for i in range(n))


def peers() -> tuple[Peer, Peer, Net]:
    def make(local: int, remote: int, rid: str, address: str, store: bool) -> Peer:
        cfg = SessionConfig.build(
            local,
            remote,
            rid,
            address=address,
            families=(IPV4_UNICAST,),
            max_prefixes=None,
            store_routes=store,
            rng=random.Random(1),
        )
        return Peer(cfg)

    a = make(64512, 64500, "192.0.2.2", "192.0.2.1", False)
    b = make(64500, 64512, "192.0.2.1", "192.0.2.2", True)
    return a, b, Net(a, b, "192.0.2.2", "192.0.2.1")


def established(desired: dict[Prefix, RouteAttrs]) -> tuple[Peer, Peer, Net, int, int]:
    """A holding ``desired``, both peers Established (the first table not sent yet: A streams it)."""
    a, b, net = peers()
    a.set_desired(desired, 0.0)
    a.start(0.0)
    b.start(0.0)
    a_conn, b_conn = net.connect(a)
    net.pump()
    return a, b, net, a_conn, b_conn


def one_run(n: int, text: str, profile: cProfile.Profile | None = None) -> dict[str, Any]:
    """Parse, stream A's first table (keeping its bytes), then feed them to B. CPU per stage."""
    t0 = time.process_time()
    desired = parse_routes_file(text, "routes.txt")
    t1 = time.process_time()
    a, b, net, a_conn, b_conn = established(desired)
    del desired
    chunks: list[bytes] = []
    t2 = time.process_time()
    if profile is not None:
        profile.enable()
    while a.streaming:
        a.handle_timer(net.now)
        chunks.append(a.data_to_send(a_conn))
    chunks.append(a.data_to_send(a_conn))
    if profile is not None:
        profile.disable()
    t3 = time.process_time()
    for data in chunks:
        if data:  # b"" would tell B that the stream ended
            b.receive_data(b_conn, data, net.now)
    t4 = time.process_time()
    assert b.rib_in is not None and b.rib_in.count(IPV4_UNICAST) == n, "the receiver did not get every route"
    return {
        "parse_s": t1 - t0,
        "stream_s": t3 - t2,
        "receive_s": t4 - t3,
        "update_bytes": sum(map(len, chunks)),
        "keep": (a, b, net),
    }


def sized(n: int, text: str, top: int) -> dict[str, Any]:
    """The tracemalloc pass: what the sender and the receiver hold per route, and where."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    desired = parse_routes_file(text, "routes.txt")
    loaded = tracemalloc.get_traced_memory()[0] - base
    a, b, net, a_conn, b_conn = established(desired)
    del desired
    before_b = tracemalloc.get_traced_memory()[0]
    while a.streaming:
        a.handle_timer(net.now)
        if data := a.data_to_send(a_conn):
            b.receive_data(b_conn, data, net.now)
    if data := a.data_to_send(a_conn):
        b.receive_data(b_conn, data, net.now)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    tracemalloc.stop()
    # Sender = desired set (parse) + its Adj-RIB-Out; receiver = its Adj-RIB-In: split by owner.
    sent = _dict_bytes(a.rib_out.sent if a.rib_out is not None else {})
    rib_in = after - before_b - sent
    sites = [
        {"where": _where(s.traceback[0]), "MB": s.size / 1e6, "count": s.count}
        for s in snap.statistics("lineno")[:top]
    ]
    del a, b, net
    return {
        "sender_bytes_per_route": (loaded + sent) / n,
        "desired_bytes_per_route": loaded / n,
        "adj_rib_out_bytes_per_route": sent / n,
        "adj_rib_in_bytes_per_route": rib_in / n,
        "sites": sites,
    }


def _where(frame: tracemalloc.Frame) -> str:
    path = Path(frame.filename)
    name = path.relative_to(REPO) if path.is_relative_to(REPO) else path.name
    return f"{name}:{frame.lineno}"


def _dict_bytes(d: dict[Any, Any]) -> int:
    """The dict's own table (its keys and values are shared with the desired set and the attribute sets)."""
    return sys.getsizeof(d)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,300000,1000000")
    ap.add_argument("--repeat", type=int, default=3, help="timing runs per size (best of)")
    ap.add_argument("--profile", action="store_true", help="cProfile the sender's stream (largest size)")
    ap.add_argument("--top", type=int, default=8, help="allocation sites to list")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        text = routes_text(n)
        runs = []
        for _ in range(args.repeat):
            r = one_run(n, text)
            del r["keep"]
            runs.append(r)
            gc.collect()
        best = {k: min(r[k] for r in runs) for k in ("parse_s", "stream_s", "receive_s")}
        mem = sized(n, text, args.top)
        results.append({"n": n, **best, "update_bytes": runs[0]["update_bytes"], **mem})
    prof_text = ""
    if args.profile:
        prof = cProfile.Profile()
        r = one_run(sizes[-1], routes_text(sizes[-1]), prof)
        del r
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(15)
        prof_text = out.getvalue()
    if args.json:
        print(json.dumps({"results": results, "profile": prof_text}, indent=2))
        return 0
    print(f"bgpsvc per-route cost, sans-IO (best of {args.repeat}; Python {sys.version.split()[0]})")
    head = (
        "N          parse s  stream s  recv s   us/route out  B/route out (desired+RIB-Out)  B/route RIB-In"
    )
    print(head)
    print("-" * len(head))
    for r in results:
        print(
            f"{r['n']:<10} {r['parse_s']:7.3f}  {r['stream_s']:8.3f}  {r['receive_s']:6.3f}   "
            f"{1e6 * (r['parse_s'] + r['stream_s']) / r['n']:12.2f}  "
            f"{r['sender_bytes_per_route']:6.1f} "
            f"({r['desired_bytes_per_route']:.1f}+{r['adj_rib_out_bytes_per_route']:.1f}){'':14}"
            f"{r['adj_rib_in_bytes_per_route']:6.1f}"
        )
    last = results[-1]
    print(f"\nlargest allocation sites at N={last['n']} (sender and receiver together, after the stream):")
    for s in last["sites"]:
        print(f"  {s['MB']:8.1f} MB  {s['count']:>9} blocks  {s['where']}")
    if prof_text:
        print(f"\nsender stream profile at N={sizes[-1]} (cProfile, tottime):\n{prof_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
