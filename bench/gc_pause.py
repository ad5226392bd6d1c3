"""How long a full cyclic collection holds the GIL over a synced cluster, and what freezing costs instead.

The node speaker runs BFD in its own thread so that transmission does not wait behind the event loop, but
a thread does not escape the GIL: a full collection (``gc.collect()``, or one the allocations trigger)
stops it for as long as it walks the heap. This measures, for bench/k8s.py's synthetic cluster:

1. the tracked objects of the synced views and how long ``gc.collect()`` takes over them (best and worst
   of 3), against ``gc.freeze()``;
2. a real informer sync as the node speaker makes it (Services, EndpointSlices keeping node-0's
   endpoints, Nodes, through the official client from the lab API server, in this process) with the
   collector paused: its tracked objects, how long a full collection over them takes (what the first
   reconcile's ``gc.collect()`` cost), and how much cyclic garbage it leaves (what freezing without
   collecting keeps).

    .venv/bin/python bench/gc_pause.py [--services 10000] [--skip-sync]
"""

from __future__ import annotations

import argparse
import functools
import gc
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import k8s as k8s_bench

from bgpsvc.k8s.informer import endpointslice_informer, load_api_client, node_informer, service_informer
from bgpsvc.k8s.views import endpointslice_from_dict
from bgpsvc.lab.apiserver import ApiServer


def collect_times(services: int) -> None:
    """Part 1."""
    cluster = k8s_bench.synthetic_cluster(services, 10, 100, 1)
    views = k8s_bench.build_views(cluster)
    del cluster
    gc.collect()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        gc.collect()
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    gc.freeze()
    frozen = time.perf_counter() - t0
    print(
        f"{services} Services: {gc.get_freeze_count()} tracked objects; gc.collect() "
        f"{min(times) * 1e3:.0f}-{max(times) * 1e3:.0f} ms with the GIL held; "
        f"gc.freeze() {frozen * 1e6:.0f} us"
    )
    gc.unfreeze()
    del views


def sync_garbage(services: int) -> None:
    """Part 2."""
    cluster = k8s_bench.synthetic_cluster(services, 10, 100, 1)
    with ApiServer() as api, tempfile.TemporaryDirectory() as tmp:
        for obj in cluster.objects():
            api.apply(obj)
        client = load_api_client(str(api.write_kubeconfig(Path(tmp) / "kubeconfig")))
        gc.collect()
        gc.freeze()  # what exists before the sync is out of the count
        gc.disable()
        # As the node speaker makes them: EndpointSlices keep node-0's endpoints only.
        slices = endpointslice_informer(
            client, converter=functools.partial(endpointslice_from_dict, node="node-0")
        )
        informers = [service_informer(client), slices, node_informer(client)]
        t0 = time.perf_counter()
        for inf in informers:
            inf.start()
        for inf in informers:
            inf.wait_synced(600)
        synced = time.perf_counter() - t0
        tracked = len(gc.get_objects())
        t0 = time.perf_counter()
        found = gc.collect()
        collect = time.perf_counter() - t0
        gc.enable()
        print(
            f"{services} Services, the node speaker's informers: synced in {synced:.1f} s with the "
            f"collector paused; {tracked} tracked objects; gc.collect() {collect * 1e3:.0f} ms; "
            f"cyclic garbage: {found} objects"
        )
        for inf in informers:
            inf.stop()
        client.close()
        gc.unfreeze()


def main() -> None:
    """Both parts."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=10_000)
    ap.add_argument("--skip-sync", action="store_true")
    args = ap.parse_args()
    collect_times(args.services)
    if not args.skip_sync:
        sync_garbage(args.services)


if __name__ == "__main__":
    main()
