"""``bgpsvc run`` with monotonic timestamps at each stage of an EndpointSlice change (helper of bench/k8s.py).

Used only with ``bench/k8s.py --trace``. It wraps, in this process only, four bgpsvc functions and then
runs the ordinary CLI (``bgpsvc.app.cli.main``); bgpsvc's code is not modified. One line per record is
appended to ``$BGPSVC_BENCH_TRACE`` with ``os.write`` (atomic for short lines across threads)::

    <time.monotonic()> rx <resource> <TYPE> <resourceVersion>   watch line received by an informer
    <time.monotonic()> reconcile_start
    <time.monotonic()> reconcile_end <routes>
    <time.monotonic()> send <messages> <octets>                 UPDATEs handed to the transport
    <time.monotonic()> gc <generation> <ms> <collected>          a cyclic GC pass (time = its start)

CLOCK_MONOTONIC is system-wide, so the benchmark compares these with its own ``time.monotonic()``.

    BGPSVC_BENCH_TRACE=/tmp/trace .venv/bin/python bench/k8s_speaker_trace.py run -c bgpsvc.yaml
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's bgpsvc

from bgpsvc.app import cli
from bgpsvc.fsm import peer as fsm_peer
from bgpsvc.k8s import listwatch, reconcile
from bgpsvc.k8s import reflector as informer
from bgpsvc.rib import RouteAttrs
from bgpsvc.wire import Prefix


def install(path: str) -> None:
    """Wrap the informer, reconciler and peer send path so that each stage writes a timestamp."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    rx_at = threading.local()

    def rec(text: str, t: float | None = None) -> None:
        os.write(fd, f"{time.monotonic() if t is None else t:.6f} {text}\n".encode())

    orig_iter_lines = listwatch.iter_lines

    def iter_lines(resp: Any) -> Iterator[bytes]:
        for line in orig_iter_lines(resp):
            rx_at.t = time.monotonic()
            yield line

    orig_handle = informer.Informer._handle

    def handle(self: informer.Informer[Any], ev: Mapping[str, Any]) -> None:
        t = getattr(rx_at, "t", None) or time.monotonic()
        orig_handle(self, ev)
        kind = ev.get("type")
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            obj = ev.get("object") or {}
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            rec(f"rx {self.resource} {kind} {rv}", t)

    orig_reconcile = reconcile.Reconciler.reconcile_once

    def reconcile_once(self: reconcile.Reconciler) -> Mapping[Prefix, RouteAttrs]:
        rec("reconcile_start")
        out = orig_reconcile(self)
        rec(f"reconcile_end {len(out)}")
        return out

    orig_data = fsm_peer.Peer.data_to_send

    def data_to_send(self: fsm_peer.Peer, conn: int) -> bytes:
        # What the driver is about to write to the transport (more than a 19-octet KEEPALIVE).
        data = orig_data(self, conn)
        if len(data) > 19:
            rec(f"send 0 {len(data)}")
        return data

    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.monotonic()
        else:
            ms = (time.monotonic() - gc_started[0]) * 1000
            rec(f"gc {info['generation']} {ms:.3f} {info['collected']}", gc_started[0])

    gc.callbacks.append(on_gc)
    listwatch.iter_lines = iter_lines
    informer.Informer._handle = handle  # type: ignore[method-assign]
    reconcile.Reconciler.reconcile_once = reconcile_once  # type: ignore[method-assign]
    fsm_peer.Peer.data_to_send = data_to_send  # type: ignore[method-assign]


def main() -> int:
    """Install the wrappers when ``$BGPSVC_BENCH_TRACE`` is set, then run the bgpsvc CLI."""
    path = os.environ.get("BGPSVC_BENCH_TRACE")
    if path:
        install(path)
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
