"""``bgpsvc demo --mode frr``: the scenario with FRR in namespaces; the view is its kernel's ECMP routes."""

from __future__ import annotations

import subprocess
import sys

from bgpsvc.lab import netlab


def test_demo_with_frr_shows_kernel_ecmp_routes() -> None:
    netlab.require_root_and_frr()
    cmd = [sys.executable, "-m", "bgpsvc", "demo", "--mode", "frr", "--duration", "0", "--pause", "0.3"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    views = out.split("\n== ")[1:]
    assert len(views) == 5, out
    initial, moved, drained, _, deleted = views
    assert "198.51.100.0/24            node-1, node-2, node-3   (ECMP)" in initial
    assert "198.51.100.10/32           node-1, node-2   (ECMP)" in initial
    assert "198.51.100.10/32           node-1, node-3   (ECMP)" in moved
    assert "198.51.100.0/24            node-2, node-3   (ECMP)" in drained
    assert "198.51.100.10/32" not in deleted
    # Every namespace the demo made (named after its PID) is gone.
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert f"bgpsvc-{proc.pid}-" not in listing
