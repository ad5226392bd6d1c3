"""Node speaker memory: what the imports cost, what the informers keep, and the real speaker's VmHWM.

Three measurements, each in fresh processes (MB = 10^6 bytes; MiB where the kernel's kB are shown raw):

1. **imports**: VmHWM of ``python -c <imports>`` for bare Python, the libraries bgpsvc needs anyway
   (urllib3, yaml), ``kubernetes.client``, ``kubernetes.client`` plus the generated ``CoreV1Api`` (what
   the informers imported before they used the REST paths), and ``bgpsvc.app.node`` (the node speaker).
2. **informers**: a child process builds the node speaker's three informers exactly as
   ``bgpsvc.app.node`` does (Node by field selector, all Services, EndpointSlices trimmed to this node)
   against the lab API server holding the synthetic cluster of ``bench/k8s.py``, and reports VmRSS/VmHWM
   after import, after each informer's sync and after a GC; with ``--trace`` also the top tracemalloc
   allocations (tracemalloc's own overhead inflates RSS there: read the sizes, not the RSS).
3. **speaker** (root, FRR): ``bench/k8s.py``'s lab run -- the real ``bgpsvc run`` process in a network
   namespace against the lab API server, peering with FRR -- with 2 changes only, and its VmHWM at the
   end. For more than 65,734 Services the bulk cluster IPs run over the whole 10.96.0.0/12 (the range
   the speaker advertises) instead of its first /16; nothing else differs.

    sudo .venv/bin/python bench/k8s_memory.py [--services 10000] [--endpoints 10] [--nodes 100]
                                             [--only imports|informers|speaker] [--trace] [--json-out F]
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
# Imported where used, never at the top: the informer child must start from bare Python, and what it
# imports is what is measured.
NODE = "node-0"  # bench/k8s.py's speaker node

IMPORTS = {
    "python": "pass",
    "urllib3+yaml": "import urllib3, yaml",
    "kubernetes.client": "import kubernetes.client",
    "kubernetes.client+CoreV1Api": "import kubernetes.client; kubernetes.client.CoreV1Api",
    "bgpsvc.app.node": "import bgpsvc.app.node",
}


def status_kib(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM in kB (KiB) from /proc."""
    text = Path(f"/proc/{pid}/status").read_text()
    return {k: int(m.group(1)) for k in ("VmRSS", "VmHWM") if (m := re.search(rf"{k}:\s+(\d+)", text))}


def mb(kib: int) -> float:
    return kib * 1024 / 1e6


def bench_imports() -> dict[str, float]:
    """VmHWM (MB) of a fresh interpreter after each import set, best (lowest) of 3."""
    out = {}
    for name, code in IMPORTS.items():
        probe = (
            f"{code}\nimport re\nprint(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())[1])"
        )
        runs = [
            int(
                subprocess.run(
                    [sys.executable, "-c", probe],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=REPO,
                    env={**os.environ, "PYTHONPATH": str(REPO)},
                    timeout=60,
                ).stdout
            )
            for _ in range(3)
        ]
        out[name] = mb(min(runs))
    return out


def informers_child(kubeconfig: str, trace: bool) -> None:
    """The node speaker's informers (as ``bgpsvc.app.node`` builds them); JSON report on stdout."""
    tracemalloc = importlib.import_module("tracemalloc") if trace else None
    report: dict[str, Any] = {"start": status_kib()}
    importlib.import_module("bgpsvc.app.node")  # everything the program imports
    inf_mod = importlib.import_module("bgpsvc.k8s.informer")
    api_client = importlib.import_module("bgpsvc.k8s.kubeconfig").api_client
    slice_view = importlib.import_module("bgpsvc.k8s.views").endpointslice_from_dict
    report["imported"] = status_kib()
    if tracemalloc is not None:
        tracemalloc.start(1)
    api = api_client(kubeconfig)
    informers = [
        inf_mod.node_informer(api, field_selector=f"metadata.name={NODE}"),
        inf_mod.service_informer(api),
        inf_mod.endpointslice_informer(api, converter=functools.partial(slice_view, node=NODE)),
    ]
    t0 = time.monotonic()
    for inf in informers:
        inf.start()
        if not inf.wait_synced(900):
            raise RuntimeError(f"{inf.resource} did not sync")
        report[f"synced_{inf.resource}"] = status_kib()
    report["sync_s"] = time.monotonic() - t0
    gc.collect()
    report["after_gc"] = status_kib()
    report["objects"] = {inf.resource: len(inf.snapshot()) for inf in informers}
    if tracemalloc is not None:
        snap = tracemalloc.take_snapshot()
        report["traced_MB"] = sum(s.size for s in snap.statistics("filename")) / 1e6
        report["top"] = [str(s) for s in snap.statistics("lineno")[:20]]
    for inf in informers:
        inf.stop()
    print(json.dumps(report))


def bench_informers(cluster: Any, trace: bool) -> dict[str, Any]:
    """Lab API server here, informers in a child process."""
    with (
        importlib.import_module("bgpsvc.lab.apiserver").ApiServer() as api,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for obj in cluster.objects():
            api.apply(obj)
        kubeconfig = api.write_kubeconfig(Path(tmp) / "kubeconfig")
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(kubeconfig), *(["--trace"] if trace else [])],
            capture_output=True,
            text=True,
            check=False,
            timeout=1800,
            cwd=REPO,
        )
        if out.returncode:
            raise RuntimeError(f"informer child failed:\n{out.stderr[-3000:]}")
        report: dict[str, Any] = json.loads(out.stdout)
        report["server_requests"] = api.stats()
    return report


def bench_speaker(cluster: Any) -> dict[str, Any]:
    """``bench/k8s.py``'s lab run with 2 changes: the real speaker's VmRSS/VmHWM."""
    lab_bench = importlib.import_module("k8s")
    opts = lab_bench.LabOptions(
        changes=2, gap=0.075, change_timeout=10.0, sync_timeout=900.0, trace=False, debounce=None, keep=False
    )
    res = lab_bench.run_lab("memory", cluster, opts)
    return {k: res.get(k) for k in ("rss_synced", "rss_end", "sync_s", "expected_routes", "api_load_s")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", choices=("imports", "informers", "speaker"), action="append")
    ap.add_argument("--trace", action="store_true", help="tracemalloc top allocations (informers)")
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    parts = args.only or ["imports", "informers", "speaker"]
    doc: dict[str, Any] = {
        "cluster": {"services": args.services, "endpoints_per_slice": args.endpoints, "nodes": args.nodes},
        "loadavg_start": os.getloadavg()[0],
        "note": "2-core machine shared with other work; MB = 10^6 bytes",
    }
    if "imports" in parts:
        doc["imports_hwm_MB"] = bench_imports()
        print(json.dumps({"imports_hwm_MB": doc["imports_hwm_MB"]}), flush=True)
    if "informers" in parts or "speaker" in parts:
        lab_bench = importlib.import_module("k8s")  # bench/k8s.py: the synthetic cluster and the lab run
        if args.services > lab_bench.DOC_COUNT + lab_bench.BULK_MAX:
            lab_bench.BULK_MAX = (1 << 20) - 2  # the whole 10.96.0.0/12 (see the module docstring)
        cluster = lab_bench.synthetic_cluster(args.services, args.endpoints, args.nodes, args.seed)
        if "informers" in parts:
            doc["informers"] = bench_informers(cluster, args.trace)
            print(json.dumps({"informers": doc["informers"]}), flush=True)
        if "speaker" in parts:
            doc["speaker"] = bench_speaker(cluster)
            print(json.dumps({"speaker": doc["speaker"]}), flush=True)
    doc["loadavg_end"] = os.getloadavg()[0]
    if args.json_out:
        args.json_out.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        informers_child(sys.argv[2], "--trace" in sys.argv[3:])
    else:
        sys.exit(main())
