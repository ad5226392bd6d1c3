"""``bench/bfd.py --soak``: BFD at 100 ms x 3 must not flap while the node speaker works hard.

The lab of bench/k8s.py (its synthetic cluster, API server, FRR ToR, node speaker process), with every
``externalTrafficPolicy: Local`` Service given an endpoint on the speaker's node (so its table holds a
/32 for each, about half the Services), and BFD on both sides of the one BGP session: FRR's bfdd with
a ``fast`` profile, the speaker's peer with ``bfd: {min_rx_ms: 100, min_tx_ms: 100, multiplier: 3}``.
While a churn thread changes the cluster through the API server and FRR asks for the whole table again
now and then (``clear bgp ... soft in`` sends ROUTE-REFRESH), the BFD Down events of both sides and the
BGP session drops are counted. The speaker runs under bench/bfd_trace.py, which records each BFD packet
it sends and each GC pause: the gaps between our packets (what the router's detection sees) are
reported with the GC passes that fell into the largest ones.
"""

from __future__ import annotations

import copy
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import k8s as k8s_bench

from bgpsvc.lab import netlab

NODE, ROUTER = k8s_bench.NODE_ADDR, k8s_bench.ROUTER_ADDR
BFD_MS, BFD_MULT = 100, 3
FRR_BFD = (
    f"bfd\n profile fast\n  receive-interval {BFD_MS}\n  transmit-interval {BFD_MS}\n"
    f"  detect-multiplier {BFD_MULT}\n !\n!\n"
)


def log(msg: str) -> None:
    print(f"[bfd-soak {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0


class Churn(threading.Thread):
    """``per_second`` API changes a second: a Service (and its slice) deleted or re-created, or a slice's
    first endpoint moved onto node-0 or off it (which changes what node-0 advertises for Local ones)."""

    def __init__(self, api: Any, cluster: Any, per_second: float, seed: int = 7) -> None:
        super().__init__(daemon=True, name="churn")
        self.api, self.cluster, self.per_second = api, cluster, per_second
        self.rng = random.Random(seed)
        self.stopping = threading.Event()
        self.changes = 0
        self.gone: set[int] = set()

    def _one(self) -> None:
        i = self.rng.randrange(1, len(self.cluster.services))  # service 0 is bench/k8s.py's watched one
        svc, sl = self.cluster.services[i], self.cluster.slices[i]
        ns = svc["metadata"]["namespace"]
        if i in self.gone:
            self.api.apply(svc)
            self.api.apply(sl)
            self.gone.discard(i)
        elif self.rng.random() < 0.5:
            self.api.delete("Service", ns, svc["metadata"]["name"])
            self.api.delete("EndpointSlice", ns, sl["metadata"]["name"])
            self.gone.add(i)
        else:
            moved = copy.deepcopy(sl)
            ep = moved["endpoints"][0]
            ep["nodeName"] = "node-1" if ep["nodeName"] == "node-0" else "node-0"
            self.api.apply(moved)
            self.cluster.slices[i] = moved
        self.changes += 1

    def run(self) -> None:
        tick = 0.05
        batch = max(1, round(self.per_second * tick))
        while not self.stopping.is_set():
            t0 = time.monotonic()
            for _ in range(batch):
                self._one()
            self.stopping.wait(max(0.0, tick - (time.monotonic() - t0)))


class TracedSpeaker(k8s_bench.SpeakerProcess):
    """The node speaker under bench/bfd_trace.py (BFD transmissions and GC pauses to ``trace``)."""

    def __init__(self, ns: netlab.Netns, config: dict[str, Any], trace: Path) -> None:
        super().__init__(ns, config, None)
        self.trace_file = trace

    def start(self) -> None:
        self.write_config()
        argv = [k8s_bench.PYTHON, str(Path(__file__).resolve().parent / "bfd_trace.py"), "run", "-c",
                str(self.config_path)]  # fmt: skip
        env = dict(os.environ, BGPSVC_BFD_TRACE=str(self.trace_file))
        with self.log_path.open("ab") as out:
            self.proc = self.ns.popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        netlab.wait_until(lambda: self._status_or_none() is not None, timeout=60, what="speaker control")


def trace_figures(trace: Path, t0: float, t1: float) -> dict[str, Any]:
    """TX gaps and GC pauses between ``t0`` and ``t1`` (monotonic), from the speaker's trace."""
    tx: list[float] = []
    gcs: list[tuple[float, int, float]] = []
    for line in trace.read_text().splitlines():
        parts = line.split()
        t = float(parts[0])
        if not t0 <= t <= t1:
            continue
        if parts[1] == "tx":
            tx.append(t)
        elif parts[1] == "gc":
            gcs.append((t, int(parts[2]), float(parts[3])))
    gaps = sorted(((b - a, a) for a, b in itertools.pairwise(tx)), reverse=True)
    worst = []
    for gap, at in gaps[:5]:
        inside = [f"gen{g} {ms:.0f} ms" for t, g, ms in gcs if at - 0.01 <= t <= at + gap]
        worst.append({"gap_ms": 1000 * gap, "at_s": at - t0, "gc": inside})
    ordered = sorted(g for g, _ in gaps)
    return {
        "tx_packets": len(tx),
        "tx_gap_p50_ms": 1000 * ordered[len(ordered) // 2] if ordered else 0.0,
        "tx_gap_p999_ms": 1000 * ordered[int(len(ordered) * 0.999)] if ordered else 0.0,
        "tx_gap_max_ms": 1000 * ordered[-1] if ordered else 0.0,
        "tx_gaps_over_200ms": sum(g > 0.2 for g in ordered),
        "tx_gaps_over_300ms": sum(g > 0.3 for g in ordered),
        "worst_gaps": worst,
        "gc_passes_over_2ms": len(gcs),
        "gc_max_ms": max((ms for _, _, ms in gcs), default=0.0),
        "gc_gen2": sum(g == 2 for _, g, _ in gcs),
    }


def counters(frr: netlab.Frr, speaker: Any) -> dict[str, Any]:
    """BFD and BGP counters of both sides, the speaker's CPU and work so far."""
    bfd = next(p for p in frr.json("show bfd peers counters") if p["peer"] == NODE)
    nb = frr.neighbor(NODE)
    st = speaker.status()
    peer = st["peers"][0]
    return {
        "t": time.monotonic(),
        "cpu": proc_cpu(speaker.pid),
        "frr_bfd_down": int(bfd["session-down"]),
        "frr_bgp_dropped": int(nb.get("connectionsDropped", 0)),
        "our_bfd_flaps": int(peer["bfd"]["flaps"]),
        "our_bfd_state": peer["bfd"]["state"],
        "our_bgp_flaps": int(peer["flaps"]),
        "updates_sent": int(peer["updates_sent"]),
        "reconciles": int(st["kubernetes"]["reconciles"]),
        "routes": int(st["routes"]),
    }


def speaker_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "local_as": k8s_bench.NODE_AS,
        "router_id": NODE,
        "listen": False,
        "drain_time": 0,
        "log_level": "info",
        "control": {"address": "127.0.0.1", "port": k8s_bench.CONTROL_PORT},
        "peers": [
            {
                "address": ROUTER,
                "peer_as": k8s_bench.ROUTER_AS,
                "connect_retry_time": 1,
                "families": ["ipv4-unicast"],
                "bfd": {"min_rx_ms": BFD_MS, "min_tx_ms": BFD_MS, "multiplier": BFD_MULT},
            }
        ],
        "kubernetes": {
            "node_name": k8s_bench.NODE,
            "kubeconfig": str(kubeconfig),
            "service_cluster_ips": [k8s_bench.BULK_RANGE, k8s_bench.DOC_RANGE],
        },
    }


def soak(seconds: float, services: int, churn_per_s: float, refresh_every: float) -> dict[str, Any]:
    """Build the lab, run the soak, tear everything down; the figures."""
    cluster = k8s_bench.synthetic_cluster(services, 10, 100, seed=1)
    for sl in cluster.slices[2::2]:  # every Local Service (even ones) gets an endpoint on node-0: a big table
        sl["endpoints"][0]["nodeName"] = k8s_bench.NODE
    tmp = Path(tempfile.mkdtemp(prefix="bgpsvc-bfd-soak-"))
    lab = netlab.Lab()
    api = speaker = churn = None
    try:
        router, node = lab.netns("router"), lab.netns("node0")
        lab.veth(router, node, f"{ROUTER}/24", f"{NODE}/24")
        router.ip("addr", "add", f"{k8s_bench.API_ADDR}/32", "dev", "lo")
        node.ip("route", "add", f"{k8s_bench.API_ADDR}/32", "via", ROUTER)
        api = k8s_bench.NsApiServer(router.name, k8s_bench.API_ADDR, k8s_bench.API_PORT).start()
        for obj in cluster.objects():
            api.apply(obj)
        conf = FRR_BFD + k8s_bench.frr_config().replace(
            f" neighbor {NODE} timers connect 1\n",
            f" neighbor {NODE} timers connect 1\n neighbor {NODE} bfd profile fast\n",
        )
        frr = lab.frr(router, conf, "tor", daemons=("zebra", "bgpd", "bfdd"), log_level="informational")
        kubeconfig = api.write_kubeconfig(tmp / "kubeconfig")
        trace = tmp / "trace"
        speaker = TracedSpeaker(node, speaker_config(kubeconfig), trace)
        speaker.start()
        s = speaker

        def ready() -> bool:
            st = s.status()
            peer = st["peers"][0]
            k = st.get("kubernetes") or {}
            synced = k.get("synced") and k.get("reconciles", 0) > 0 and peer["state"] == "Established"
            return bool(synced and (peer.get("bfd") or {}).get("state") == "Up")

        netlab.wait_until(ready, timeout=180, interval=0.5, what="speaker synced, BGP and BFD up")
        netlab.wait_until(lambda: s.status()["peers"][0]["bfd"]["tx_interval_ms"] == BFD_MS, timeout=10,
                          what="BFD at 100 ms")  # fmt: skip
        before = counters(frr, speaker)
        log(f"synced: {before['routes']} routes; soaking for {seconds:.0f} s at {churn_per_s:.0f} changes/s")
        churn = Churn(api, cluster, churn_per_s)
        churn.start()
        refreshes, end, next_refresh = 0, time.monotonic() + seconds, time.monotonic() + refresh_every
        while (now := time.monotonic()) < end:
            if now >= next_refresh:
                frr.vtysh(f"clear bgp ipv4 unicast {NODE} soft in")  # ROUTE-REFRESH: the whole table again
                refreshes += 1
                next_refresh += refresh_every
            time.sleep(min(1.0, max(0.0, end - now)))
            if int(end - now) % 60 == 0:
                c = counters(frr, speaker)
                log(f"{end - now:.0f} s left: BFD {c['our_bfd_state']}, flaps ours {c['our_bfd_flaps']} "
                    f"FRR's {c['frr_bfd_down']}, {churn.changes} changes")  # fmt: skip
        churn.stopping.set()
        churn.join(timeout=10)
        after = counters(frr, speaker)
        wall = after["t"] - before["t"]
        return {
            **trace_figures(trace, before["t"], after["t"]),
            "startup_bfd_down": {"ours": before["our_bfd_flaps"], "frr": before["frr_bfd_down"]},
            "seconds": wall,
            "services": services,
            "routes": after["routes"],
            "changes": churn.changes,
            "changes_per_s": churn.changes / wall,
            "reconciles": after["reconciles"] - before["reconciles"],
            "route_refreshes": refreshes,
            "updates_sent": after["updates_sent"] - before["updates_sent"],
            "speaker_cpu_pct": 100 * (after["cpu"] - before["cpu"]) / wall,
            "our_bfd_down": after["our_bfd_flaps"] - before["our_bfd_flaps"],
            "frr_bfd_down": after["frr_bfd_down"] - before["frr_bfd_down"],
            "our_bgp_drops": after["our_bgp_flaps"] - before["our_bgp_flaps"],
            "frr_bgp_drops": after["frr_bgp_dropped"] - before["frr_bgp_dropped"],
        }
    finally:
        if churn is not None:
            churn.stopping.set()
        if speaker is not None:
            speaker.stop()
        if api is not None:
            api.stop()
        lab.cleanup()
        if speaker is not None:
            shutil.rmtree(speaker.dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def print_soak(r: dict[str, Any]) -> None:
    print(f"BFD soak: {r['seconds']:.0f} s at {BFD_MS} ms x {BFD_MULT} ({BFD_MS * BFD_MULT} ms detection), "
          f"node speaker serving {r['services']} Services ({r['routes']} routes)")  # fmt: skip
    rows = [
        ("API changes applied", f"{r['changes']} ({r['changes_per_s']:.0f}/s)"),
        ("reconciles", str(r["reconciles"])),
        ("whole table re-sent", f"{r['route_refreshes']} times (ROUTE-REFRESH), {r['updates_sent']} UPDATEs"),
        ("speaker CPU (all threads)", f"{r['speaker_cpu_pct']:.0f} % of a core"),
        ("BFD Down events", f"ours {r['our_bfd_down']}, FRR's {r['frr_bfd_down']}  (expected 0)"),
        ("BGP session drops", f"ours {r['our_bgp_drops']}, FRR's {r['frr_bgp_drops']}  (expected 0)"),
        (
            "BFD Down before the soak",
            "ours {ours}, FRR's {frr}  (start-up, initial sync)".format(**r["startup_bfd_down"]),
        ),
    ]
    rows += [
        ("our BFD TX gaps", f"p50 {r['tx_gap_p50_ms']:.0f} ms, p99.9 {r['tx_gap_p999_ms']:.0f} ms, max "
                            f"{r['tx_gap_max_ms']:.0f} ms; {r['tx_gaps_over_200ms']} > 200 ms, "
                            f"{r['tx_gaps_over_300ms']} > 300 ms ({r['tx_packets']} packets)"),
        ("GC passes >= 2 ms", f"{r['gc_passes_over_2ms']} ({r['gc_gen2']} full), "
                              f"longest {r['gc_max_ms']:.0f} ms"),
    ]  # fmt: skip
    for name, value in rows:
        print(f"  {name:<28}{value}")
    for w in r["worst_gaps"]:
        gc_text = ", ".join(w["gc"]) or "no GC pass"
        print(f"    gap {w['gap_ms']:.0f} ms at +{w['at_s']:.0f} s ({gc_text})")
