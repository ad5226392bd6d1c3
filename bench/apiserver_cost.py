"""What one node speaker costs the API server, measured on a 10k-Service churn, and extrapolated.

Method (docs/scale.md has the reasoning and the figures):

1. The lab API server (``bgpsvc.lab.apiserver``, in this process, loopback) holds ``bench/k8s.py``'s
   synthetic cluster (``--services`` Services with one EndpointSlice of ``--endpoints`` endpoints each,
   ``--nodes`` Nodes) and bgpsvc's CRDs. It counts requests by verb (``stats()``), open watches
   (``open_watches``) and bytes per connection from the kernel's TCP counters (``traffic()``).
2. Phase **bgpsvc**: one real node speaker process (``bgpsvc run``, node ``node-0``, the default
   ``kubernetes:`` settings: Services, EndpointSlices, its Node, the custom resources, BGPNodeStatus
   writes every ``status_interval``; no BGP peers -- BGP is not the API server's business) as a follower:
   the bench holds the Lease ``bgpsvc-conditions`` for another node, renewing it every 5 s as a leader
   would, so the speaker only reads it. Phase **bgpsvc-leader**: the same speaker with the Lease free, so
   it leads: it also watches every Node and writes the conditions.
   Once it reports ``synced``, the start-up cost (requests, bytes) is recorded; then for ``--duration``
   seconds a deterministic churn is applied at fixed rates: ``--slice-rate`` EndpointSlice updates/s
   (one endpoint's readiness flips, as pods roll), ``--service-rate`` Service updates/s (an annotation
   changes) and ``--node-rate`` Node updates/s (a condition's heartbeat; kubelet reports Node status every
   5 min when nothing changes, so ``nodes / 300``). Measured over that window at the server: requests/s by
   verb, open watches, bytes/s sent (and received), and the writes that changed something (the
   resourceVersion's advance: one watch event each for every watcher they match).
3. Phase **kube-proxy**: the same, with what kube-proxy watches, through the official client
   (``ClientListerWatcher`` + ``Informer``): all Services and all EndpointSlices with kube-proxy's label
   selector ``!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless``, and its own Node
   (field selector), in a child process.
4. Extrapolation: every watch event is sent to every watcher whose selector it matches, so the server's
   bytes/s = (nodes - 1) x (follower's bytes/s at that churn) + the leader's; open watches and requests
   likewise; request rate = watch renewals + Lease reads + status writes. kube-proxy: nodes x its own.
   The churn itself grows with the cluster (more Services, more pods), so the figures are per unit of
   churn too: bytes per event per watcher.

    .venv/bin/python bench/apiserver_cost.py [--services 10000] [--endpoints 10] [--nodes 100]
        [--duration 60] [--slice-rate 50] [--service-rate 2] [--node-rate N/300] [--json-out F]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bgpsvc.lab.apiserver import ApiServer  # noqa: E402

CRDS = REPO / "deploy" / "manifests" / "01-crds.yaml"
NODE = "node-0"
KUBE_PROXY_SELECTOR = "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
#: Watches per node speaker with the default settings: Services, EndpointSlices, its Node, BGPPeers,
#: BGPAdvertisements, BGPNodeConfigs (Secrets only when referenced); the Lease holder also all Nodes.
#: Status writes: measured by bench/crd_status.py at 1,000 simulated nodes (commit d5b91be): 92/s typical,
#: 197/s worst with flapping sessions, bound nodes / status_interval = 200/s at the default 5 s.
CRD_STATUS_1000 = {"typical_per_s": 92.0, "worst_per_s": 197.0, "bound_per_s": 200.0}
#: Server-side watch timeouts the informers ask for: uniform in [300, 600) s, so each watch is renewed
#: about every 450 s (bgpsvc.k8s.reflector.WATCH_TIMEOUT; client-go's reflector uses the same range).
MEAN_WATCH_LIFETIME = 450.0


def log(msg: str) -> None:
    print(f"[apiserver-cost {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def snapshot(api: ApiServer) -> dict[str, Any]:
    """Counters at one moment."""
    return {"t": time.monotonic(), "requests": api.stats(), "traffic": api.traffic() or {}}


def delta(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Per-second rates between two snapshots (and the totals)."""
    dt = b["t"] - a["t"]
    verbs = set(a["requests"]) | set(b["requests"])
    reqs = {v: b["requests"].get(v, 0) - a["requests"].get(v, 0) for v in sorted(verbs)}
    sent = b["traffic"].get("sent", 0) - a["traffic"].get("sent", 0)
    received = b["traffic"].get("received", 0) - a["traffic"].get("received", 0)
    return {
        "seconds": dt,
        "requests": {v: n for v, n in reqs.items() if n},
        "requests_per_s": {v: n / dt for v, n in reqs.items() if n},
        "bytes_sent": sent,
        "bytes_received": received,
        "bytes_sent_per_s": sent / dt,
        "bytes_received_per_s": received / dt,
    }


# -- churn ----------------------------------------------------------------------------------------------


class Churn:
    """Applies the deterministic churn at fixed rates from one thread; counts what it applied.

    Every write changes its object (a readiness flip, an annotation counter, a heartbeat time), so each
    is one watch event for every watcher whose selector matches it."""

    def __init__(self, api: ApiServer, cluster: Any, rates: Mapping[str, float], seed: int) -> None:
        self.api = api
        self.rates = dict(rates)
        self.rng = random.Random(seed)
        self.slices = [copy.deepcopy(s) for s in cluster.slices]
        self.services = [copy.deepcopy(s) for s in cluster.services]
        self.nodes = [copy.deepcopy(n) for n in cluster.nodes]
        self.applied = dict.fromkeys(rates, 0)
        self.late = 0.0  # worst lag behind the schedule, seconds

    def _slice(self) -> None:
        s = self.rng.choice(self.slices)
        ep = self.rng.choice(s["endpoints"])
        cond = ep["conditions"]
        cond["ready"] = cond["serving"] = not cond["ready"]
        self.api.apply(s)

    def _service(self) -> None:
        svc = self.rng.choice(self.services)
        ann = svc["metadata"].setdefault("annotations", {})
        ann["bench.bgpsvc.io/revision"] = str(int(ann.get("bench.bgpsvc.io/revision", "0")) + 1)
        self.api.apply(svc)

    def _node(self) -> None:
        node = self.rng.choice(self.nodes)
        conds = node["status"].setdefault("conditions", [{"type": "Ready", "status": "True"}])
        conds[0]["lastHeartbeatTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.api.apply(node)

    def run(self, duration: float) -> None:
        """Apply each kind at its rate for ``duration`` seconds (events due at k / rate)."""
        actions: dict[str, Callable[[], None]] = {"slices": self._slice, "services": self._service}
        actions["nodes"] = self._node
        due = [(k / r, kind) for kind, r in self.rates.items() if r > 0 for k in range(int(duration * r))]
        due.sort()
        t0 = time.monotonic()
        for at, kind in due:
            wait = t0 + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                self.late = max(self.late, -wait)
            actions[kind]()
            self.applied[kind] += 1
        rest = t0 + duration - time.monotonic()
        if rest > 0:
            time.sleep(rest)


# -- clients --------------------------------------------------------------------------------------------


class LeaseHolder:
    """Holds the Lease ``bgpsvc-conditions`` for another node, renewing it as a leader does (in-process
    writes: they cost the server what the leader's updates cost, and no client bytes); releases it at
    the end, as a leader that stops does."""

    def __init__(self, api: ApiServer, namespace: str = "bgpsvc-system") -> None:
        self.api, self.namespace = api, namespace
        self._stop = threading.Event()
        self.renew()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _body(self, holder: str, duration: int) -> dict[str, Any]:
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000001Z", time.gmtime())
        spec = {"holderIdentity": holder, "leaseDurationSeconds": duration, "renewTime": now}
        meta = {"name": "bgpsvc-conditions", "namespace": self.namespace}
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}

    def renew(self) -> None:
        self.api.apply(self._body("node-1_bench", 15))

    def _run(self) -> None:
        while not self._stop.wait(5.0):
            self.renew()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.api.apply(self._body("", 1))


class Speaker:
    """One ``bgpsvc run`` node speaker process (no BGP peers); ended by PID."""

    def __init__(self, kubeconfig: Path, tmp: Path) -> None:
        self.port = free_port()
        config = {
            "local_as": 64512,
            "router_id": "192.0.2.2",
            "listen": False,
            "drain_time": 0,
            "log_level": "warning",
            "control": {"address": "127.0.0.1", "port": self.port},
            "peers": [],
            "kubernetes": {
                "node_name": NODE,
                "kubeconfig": str(kubeconfig),
                "service_cluster_ips": ["10.96.0.0/12", "198.51.100.0/24"],
            },
        }
        self.config_path = tmp / "speaker.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = tmp / "speaker.log"
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bgpsvc.app.cli", "run", "-c", str(self.config_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def synced(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"speaker exited: {self.log_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=5) as r:
                k = json.loads(r.read()).get("kubernetes") or {}
        except (OSError, ValueError):
            return False
        return bool(k.get("synced"))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


class KubeProxyWatches:
    """A child process watching what kube-proxy watches (see the module docstring); ended by PID."""

    def __init__(self, kubeconfig: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--kube-proxy-child", str(kubeconfig)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        self._synced = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "synced":
                self._synced.set()

    def synced(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError("kube-proxy child exited")
        return self._synced.is_set()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def kube_proxy_child(kubeconfig: str) -> None:
    """kube-proxy's informers, on the official client; prints ``synced``, runs until SIGTERM."""
    informer = importlib.import_module("bgpsvc.k8s.informer")
    api = informer.load_api_client(kubeconfig)
    raw: Callable[[Mapping[str, Any]], Mapping[str, Any]] = dict  # kube-proxy keeps whole objects
    infs = [
        informer.service_informer(api, converter=raw, label_selector=KUBE_PROXY_SELECTOR),
        informer.endpointslice_informer(api, converter=raw, label_selector=KUBE_PROXY_SELECTOR),
        informer.node_informer(api, converter=raw, field_selector=f"metadata.name={NODE}"),
    ]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for inf in infs:
        inf.start()
    for inf in infs:
        inf.wait_synced(600)
    print("synced", flush=True)
    stop.wait(3600)
    for inf in infs:
        inf.stop()


# -- one phase ------------------------------------------------------------------------------------------


def wait_for(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def run_phase(
    name: str, api: ApiServer, churn: Churn, make: Callable[[], Any], args: argparse.Namespace
) -> dict[str, Any]:
    """Start the client, record its sync cost, apply the churn, record the window's rates."""
    before = snapshot(api)
    client = make()
    try:
        wait_for(client.synced, args.sync_timeout, f"{name} sync")
        synced = snapshot(api)
        time.sleep(args.settle)
        start, rv0 = snapshot(api), int(api.resource_version)
        watches: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(1.0):
                watches.append(api.open_watches)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        applied0 = dict(churn.applied)
        churn.run(args.duration)
        end, rv1 = snapshot(api), int(api.resource_version)
        done.set()
        sampler.join(5)
    finally:
        client.stop()
    window = delta(start, end)
    applied = {k: n - applied0[k] for k, n in churn.applied.items()}
    events = rv1 - rv0  # writes that changed something (each one event for a watcher that matches it)
    window.update(
        {
            "churn_applied": applied,
            "churn_writes": events,
            "churn_events_per_s": events / window["seconds"],
            "churn_worst_lag_s": churn.late,
            "open_watches_max": max(watches, default=api.open_watches),
            "open_watches_min": min(watches, default=api.open_watches),
            "bytes_per_event": window["bytes_sent"] / max(1, events),
        }
    )
    out = {"sync": delta(before, synced), "churn": window}
    log(
        f"{name}: sync {out['sync']['requests']} {out['sync']['bytes_sent'] / 1e6:.1f} MB; churn "
        f"{window['bytes_sent_per_s'] / 1e3:.1f} kB/s sent, {window['open_watches_max']} watches, "
        f"{window['requests_per_s']}"
    )
    return out


# -- extrapolation and ToR figures ----------------------------------------------------------------------


def extrapolate(phase: Mapping[str, Any], nodes: int, status_per_s: float | None) -> dict[str, float]:
    """Per-node figures x nodes (the method in the module docstring)."""
    churn, sync = phase["churn"], phase["sync"]
    watches = churn["open_watches_max"]
    return {
        "nodes": nodes,
        "open_watches": nodes * watches,
        "watch_bytes_per_s": nodes * churn["bytes_sent_per_s"],
        "watch_renewals_per_s": nodes * watches / MEAN_WATCH_LIFETIME,
        "get_requests_per_s": nodes * churn["requests_per_s"].get("get", 0.0),
        "status_writes_per_s": status_per_s if status_per_s is not None else 0.0,
        "startup_list_requests": nodes * sync["requests"].get("list", 0),
        "startup_bytes": nodes * sync["bytes_sent"],
    }


def cluster_total(followers: Mapping[str, float], leader: Mapping[str, float]) -> dict[str, float]:
    """The followers' figures plus the leader's (node counts add up too)."""
    out = {k: v + leader.get(k, 0.0) for k, v in followers.items()}
    out["status_writes_per_s"] = followers["status_writes_per_s"]
    return out


def tor_figures(nodes: int = 1000, per_rack: int = 40, tors_per_rack: int = 2) -> dict[str, Any]:
    """Sessions and paths per prefix seen by a ToR or a route reflector (docs/scale.md, "ToR side")."""
    racks = -(-nodes // per_rack)
    limits = (64, 128, 256)
    return {
        "nodes": nodes,
        "racks": racks,
        "per_rack_tor": {
            "sessions_per_tor": per_rack,
            "paths_per_aggregate_at_tor": per_rack,
            "paths_per_aggregate_at_spine": racks * tors_per_rack,
            "within_ecmp": {n: per_rack <= n for n in limits},
        },
        "flat_route_reflector_pair": {
            "sessions_per_rr": nodes,
            "paths_per_aggregate_with_add_path_all": nodes,
            "within_ecmp": {n: nodes <= n for n in limits},
        },
        "local_service_paths": "one per node with a ready endpoint (its replicas' nodes)",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--slice-rate", type=float, default=50.0, help="EndpointSlice updates per second")
    ap.add_argument("--service-rate", type=float, default=2.0, help="Service updates per second")
    ap.add_argument("--node-rate", type=float, default=None, help="Node updates/s (default nodes/300)")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--sync-timeout", type=float, default=600.0)
    ap.add_argument("--only", choices=("bgpsvc", "kube-proxy"), action="append")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    if args.node_rate is None:
        args.node_rate = args.nodes / 300.0
    lab_bench = importlib.import_module("k8s")  # bench/k8s.py: the synthetic cluster
    cluster = lab_bench.synthetic_cluster(args.services, args.endpoints, args.nodes, args.seed)
    doc: dict[str, Any] = {
        "cluster": {"services": args.services, "endpoints": cluster.endpoints, "nodes": args.nodes},
        "churn_rates": {"slices": args.slice_rate, "services": args.service_rate, "nodes": args.node_rate},
        "duration_s": args.duration,
        "loadavg_start": os.getloadavg()[0],
        "note": "2-core machine shared with other work; bytes = TCP payload acknowledged by the client",
    }
    with ApiServer(bookmark_interval=60.0) as api, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        api.load_manifests(CRDS)
        t0 = time.monotonic()
        for obj in cluster.objects():
            api.apply(obj)
        log(f"cluster loaded in {time.monotonic() - t0:.1f} s")
        kubeconfig = api.write_kubeconfig(tmp / "kubeconfig")
        # One churn for both phases: it keeps the objects as the server has them, so every write changes
        # something (a flip applied to a stale copy could be a no-op and send nothing).
        churn = Churn(api, cluster, doc["churn_rates"], args.seed)
        phases: dict[str, Callable[[], Any]] = {
            "bgpsvc": lambda: Speaker(kubeconfig, tmp),
            "bgpsvc-leader": lambda: Speaker(kubeconfig, tmp),
            "kube-proxy": lambda: KubeProxyWatches(kubeconfig),
        }
        for name, make in phases.items():
            if args.only and name.split("-leader")[0] not in args.only:
                continue
            holder = LeaseHolder(api) if name == "bgpsvc" else None
            try:
                doc[name] = run_phase(name, api, churn, make, args)
            finally:
                if holder is not None:
                    holder.stop()
            # The client is gone; the server notices a dead watch only when it next writes to it.
            api.drop_watches()
    if "bgpsvc" in doc and "bgpsvc-leader" in doc:
        status = CRD_STATUS_1000["typical_per_s"]
        doc["bgpsvc"]["extrapolated"] = [
            cluster_total(
                extrapolate(doc["bgpsvc"], n - 1, status * n / 1000),
                extrapolate(doc["bgpsvc-leader"], 1, None),
            )
            for n in (1000, 5000)
        ]
    if "kube-proxy" in doc:
        doc["kube-proxy"]["extrapolated"] = [extrapolate(doc["kube-proxy"], n, None) for n in (1000, 5000)]
    if "bgpsvc" in doc and "kube-proxy" in doc:
        b, k = doc["bgpsvc"]["churn"], doc["kube-proxy"]["churn"]
        doc["ratio_bgpsvc_to_kube_proxy"] = {
            "bytes_sent_per_s": b["bytes_sent_per_s"] / max(1.0, k["bytes_sent_per_s"]),
            "open_watches": b["open_watches_max"] / max(1, k["open_watches_max"]),
            "sync_bytes": doc["bgpsvc"]["sync"]["bytes_sent"]
            / max(1, doc["kube-proxy"]["sync"]["bytes_sent"]),
        }
    doc["crd_status_1000_nodes"] = CRD_STATUS_1000
    doc["tor"] = [tor_figures(1000), tor_figures(5000)]
    doc["loadavg_end"] = os.getloadavg()[0]
    text = json.dumps(doc, indent=2)
    print(text)
    if args.json_out:
        args.json_out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--kube-proxy-child"]:
        with contextlib.suppress(KeyboardInterrupt):
            kube_proxy_child(sys.argv[2])
    else:
        sys.exit(main())
