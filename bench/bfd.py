"""BFD timing: transmit intervals under a busy main loop, and the CPU cost of 100 sessions.

Runs as root: builds two network namespaces joined by a veth, with FRR bfdd as the peer in one of
them (a separate process, so it shares no GIL with us), and our BFD in the other.

1. One session at 100 ms (detect mult 3, so the peer declares us dead after 300 ms of silence). The
   main asyncio loop runs "reconciles": a 50-100 ms CPU burst every 200 ms, and every 5th cycle a
   ``gc.collect()`` of a big heap. Our transmit times are logged; the table shows the gaps between
   consecutive packets (p50/p99/max) and the Down events bfdd counted, for BFD idle, BFD on the busy
   main loop, and BFD in its own thread (``BfdThread``); each of the latter two again with the heap
   ``gc.freeze()``-d (a collection holds the GIL throughout, so a thread alone cannot help there).
2. 100 sessions at 100 ms against bfdd (100 addresses on our side): CPU seconds per wall second of
   our process (main thread idle) next to bfdd's own.
3. ``--soak SECONDS`` instead: no false positives. A real node speaker (``bgpsvc run`` with a
   ``kubernetes:`` section, BFD 100 ms x 3 to an FRR ToR with ``neighbor X bfd profile``) serves the
   10,000-Service synthetic cluster of bench/k8s.py from the lab API server, while the benchmark keeps it
   busy: ``--churn`` API changes a second (Services deleted and re-created, EndpointSlices moved on and
   off the node) and, every ``--refresh`` seconds, a ROUTE-REFRESH from FRR that makes the speaker send
   its whole table again. Counted: BFD Down events on both sides and BGP session drops (expected: 0),
   next to the work done (changes, reconciles, tables sent, the speaker's CPU).

    sudo .venv/bin/python bench/bfd.py [--seconds 10] [--heap 1500000] [--sessions 100] [--json]
    sudo .venv/bin/python bench/bfd.py --soak 600 [--churn 200] [--refresh 30] [--services 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import itertools
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bgpsvc.aio.bfd import BfdDriver, BfdThread
from bgpsvc.bfd import BfdConfig, SessionKey, State
from bgpsvc.lab import netlab

US, PEER = "192.0.2.1", "192.0.2.2"
TX_LOG: list[float] = []
MODES = ("idle", "main loop", "own thread", "main loop+gc.freeze", "own thread+gc.freeze")


class LoggingDriver(BfdDriver):
    """Our driver, noting the time of every transmitted datagram."""

    def _transmit(self, key: SessionKey, data: bytes) -> None:
        TX_LOG.append(time.perf_counter())
        super()._transmit(key, data)


def join(ns: netlab.Netns) -> None:
    """Move the calling thread into ``ns`` (sockets it creates live there)."""
    fd = os.open(f"/var/run/netns/{ns.name}", os.O_RDONLY)
    try:
        if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(fd)


def burn(seconds: float) -> None:
    """Pure-Python CPU work (holds the GIL except at the interpreter's switch points)."""
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        for i in range(200):
            x += i * i


async def busy_main_loop(stop: asyncio.Event, heap: list[Any], stats: dict[str, list[float]]) -> None:
    """A reconcile of 50-100 ms every 200 ms; every 5th cycle a full gc.collect() of ``heap``."""
    rnd = random.Random(1)
    cycle = 0
    while not stop.is_set():
        burn(rnd.uniform(0.05, 0.10))
        cycle += 1
        if cycle % 5 == 0:
            t0 = time.perf_counter()
            gc.collect()
            stats["gc"].append(time.perf_counter() - t0)
        await asyncio.sleep(0.2)
    assert heap  # keep it alive


def frr_down_events(frr: netlab.Frr, peer: str) -> int:
    for p in frr.json("show bfd peers counters"):
        if p["peer"] == peer:
            return int(p["session-down"])
    raise KeyError(peer)


async def wait_up(status: Any, key: SessionKey, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while status(key).state is not State.UP:
        if time.monotonic() > deadline:
            raise TimeoutError(f"BFD {key} not Up")
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.5)  # let the Poll Sequence settle the 100 ms rate


async def run_mode(
    mode: str, us: netlab.Netns, frr: netlab.Frr, seconds: float, heap: list[Any]
) -> dict[str, Any]:
    key = SessionKey(PEER)
    config = BfdConfig(key, 100_000, 100_000, 3)
    stats: dict[str, list[float]] = {"gc": []}
    thread: BfdThread | None = None
    driver: BfdDriver | None = None
    if mode.startswith("own thread"):
        thread = BfdThread(
            thread_init=lambda: join(us), driver_class=LoggingDriver, listen=(US,), multihop=False
        )
        thread.start()
        thread.add_session(config)
        status = thread.status
    else:
        driver = LoggingDriver(listen=(US,), multihop=False)
        driver.start()
        driver.add_session(config)
        status = driver.status
    await wait_up(status, key)
    downs_before = frr_down_events(frr, US)
    TX_LOG.clear()
    if mode.endswith("gc.freeze"):
        gc.freeze()  # what the node speaker does after its first sync: the old heap is not walked again
    stop = asyncio.Event()
    work = asyncio.create_task(busy_main_loop(stop, heap, stats)) if mode != "idle" else None
    await asyncio.sleep(seconds)
    stop.set()
    if work is not None:
        await work
    gc.unfreeze()
    gaps = [b - a for a, b in itertools.pairwise(TX_LOG)]
    result = {
        "mode": mode,
        "packets": len(TX_LOG),
        "p50_ms": 1000 * statistics.median(gaps),
        "p99_ms": 1000 * statistics.quantiles(gaps, n=100, method="inclusive")[98],
        "max_ms": 1000 * max(gaps),
        "over_300ms": sum(g > 0.3 for g in gaps),
        "peer_down_events": frr_down_events(frr, US) - downs_before,
        "our_flaps": status(key).flaps,
        "gc_max_ms": 1000 * max(stats["gc"], default=0.0),
    }
    if thread is not None:
        thread.remove_session(key)
        thread.stop()
    elif driver is not None:
        driver.remove_session(key)
        driver.close()
    await asyncio.sleep(1.0)
    return result


def proc_cpu(pid: int) -> float:
    """utime + stime of a process in seconds (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_cost(us: netlab.Netns, if_us: str, frr: netlab.Frr, n: int, seconds: float) -> dict[str, Any]:
    """``n`` sessions at 100 ms, our side in a BfdThread while the main thread sleeps."""
    locals_ = [f"192.0.2.{101 + i}" for i in range(n)]
    for addr in locals_:
        us.add_address(if_us, f"{addr}/24")
    frr.configure("bfd\n" + "".join(f" peer {a}\n  receive-interval 100\n  transmit-interval 100\n !\n"
                                      for a in locals_) + "!\n")  # fmt: skip
    thread = BfdThread(thread_init=lambda: join(us), listen=("0.0.0.0",), multihop=False)
    thread.start()
    keys = [SessionKey(PEER, local=a) for a in locals_]
    for key in keys:
        thread.add_session(BfdConfig(key, 100_000, 100_000, 3))
    netlab.wait_until(lambda: all(s.state is State.UP for s in thread.statuses()), timeout=60,
                      what=f"{n} sessions up")  # fmt: skip
    time.sleep(2.0)  # Poll Sequences done, 100 ms everywhere
    bfdd = frr.pid("bfdd")
    sent0 = sum(s.packets_sent + s.packets_received for s in thread.statuses())
    ours0, theirs0, wall0 = time.process_time(), proc_cpu(bfdd), time.perf_counter()
    time.sleep(seconds)
    ours1, theirs1, wall1 = time.process_time(), proc_cpu(bfdd), time.perf_counter()
    statuses = thread.statuses()
    packets = sum(s.packets_sent + s.packets_received for s in statuses) - sent0
    wall = wall1 - wall0
    thread.stop()
    return {
        "sessions": n,
        "all_up": all(s.state is State.UP for s in statuses),
        "flaps": sum(s.flaps for s in statuses),
        "packets_per_s": packets / wall,
        "ours_cpu_pct": 100 * (ours1 - ours0) / wall,
        "bfdd_cpu_pct": 100 * (theirs1 - theirs0) / wall,
        "ours_us_per_packet": 1e6 * (ours1 - ours0) / max(packets, 1),
    }


def build_heap(size: int) -> list[Any]:
    """Container objects the cyclic GC must walk (dicts holding lists), like a big informer cache."""
    return [{"k": [i], "v": (i, str(i))} for i in range(size // 3)]


async def main_async(args: argparse.Namespace, lab: netlab.Lab) -> dict[str, Any]:
    us, peer = lab.netns("us"), lab.netns("peer")
    if_us, _ = lab.veth(us, peer, f"{US}/24", f"{PEER}/24")
    conf = f"bfd\n peer {US}\n  receive-interval 100\n  transmit-interval 100\n !\n!\n"
    frr = lab.frr(peer, conf, "bfdpeer", daemons=("zebra", "bfdd"), log_level="informational")
    heap = build_heap(args.heap)
    gc.collect()
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    join(us)  # the main loop's sockets (mode "main loop") must live in our namespace
    try:
        rows = [await run_mode(mode, us, frr, args.seconds, heap) for mode in MODES]
    finally:
        ctypes.CDLL(None, use_errno=True).setns(home, 0x40000000)  # back home, so the lab can clean up
        os.close(home)
    del heap
    gc.collect()
    cpu = await asyncio.get_running_loop().run_in_executor(
        None, cpu_cost, us, if_us, frr, args.sessions, args.seconds
    )
    return {"tx_intervals": rows, "cpu": cpu, "switch_interval_ms": 1000 * sys.getswitchinterval()}


def print_tables(result: dict[str, Any]) -> None:
    print("One session, 100 ms TX (jitter 75-100 %), peer FRR bfdd with detect mult 3 (300 ms):")
    print(f"{'BFD runs on':<20} {'pkts':>5} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'>300ms':>7} "
          f"{'peer Down':>9} {'gc max ms':>9}")  # fmt: skip
    for r in result["tx_intervals"]:
        print(f"{r['mode']:<20} {r['packets']:>5} {r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} "
              f"{r['max_ms']:>7.1f} {r['over_300ms']:>7} {r['peer_down_events']:>9} "
              f"{r['gc_max_ms']:>9.1f}")  # fmt: skip
    c = result["cpu"]
    print(f"\n{c['sessions']} sessions at 100 ms vs FRR bfdd ({c['packets_per_s']:.0f} packets/s "
          f"sent+received, all Up: {c['all_up']}, flaps: {c['flaps']}):")  # fmt: skip
    print(
        f"  bgpsvc BfdThread: {c['ours_cpu_pct']:.1f} % of a core ({c['ours_us_per_packet']:.0f} us/packet)"
    )
    print(f"  FRR bfdd:         {c['bfdd_cpu_pct']:.1f} % of a core "
          f"(ratio {c['ours_cpu_pct'] / max(c['bfdd_cpu_pct'], 0.01):.1f}x)")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0, help="measurement time per case")
    ap.add_argument("--heap", type=int, default=1_500_000, help="objects in the heap gc.collect() walks")
    ap.add_argument("--sessions", type=int, default=100)
    ap.add_argument("--soak", type=float, default=0.0, help="run the soak for this many seconds instead")
    ap.add_argument("--churn", type=float, default=200.0, help="soak: API changes per second")
    ap.add_argument("--refresh", type=float, default=30.0, help="soak: seconds between whole tables")
    ap.add_argument("--services", type=int, default=10_000, help="soak: Services in the cluster")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    problems = netlab.frr_available()
    if problems:
        print("bench/bfd.py needs: " + "; ".join(problems), file=sys.stderr)
        return 2
    if args.soak:
        from bfd_soak import print_soak, soak  # noqa: PLC0415 - bench/k8s.py is imported only here

        soaked = soak(args.soak, args.services, args.churn, args.refresh)
        print(json.dumps(soaked, indent=1)) if args.json else print_soak(soaked)
        return 0
    with netlab.Lab() as lab:
        result = asyncio.run(main_async(args, lab))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_tables(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
