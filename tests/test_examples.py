"""The examples and demos run and do what they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.loopback import free_port

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, timeout: float = 120) -> str:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


def test_library_example_announces_withdraws_and_stops_gracefully() -> None:
    out = run(str(ROOT / "examples" / "library_speaker.py"), "--port", str(free_port()))
    assert "[router] + 198.51.100.0/24 (ipv4-unicast)" in out
    assert "[router] + 2001:db8:10::/48 (ipv6-unicast)" in out
    assert "[router] - 203.0.113.10/32 (ipv4-unicast)" in out
    assert "[router] + 198.51.100.128/25 (ipv4-unicast)" in out
    assert "Administrative Shutdown: 'example finished'" in out


def test_demo_shows_the_router_view_following_the_cluster() -> None:
    out = run("-m", "bgpsvc.app.cli", "demo", "--duration", "0", "--pause", "0.3")
    views = out.split("\n== ")[1:]
    assert len(views) == 5, out
    initial, moved, drained, undrained, deleted = views
    assert "198.51.100.0/24            node-1, node-2, node-3" in initial
    assert "198.51.100.10/32           node-1, node-2   (ECMP)" in initial  # Local: ready endpoints only
    assert "2001:db8:96::10/128        node-1\n" in initial + "\n"  # decided per address family
    assert "198.51.100.30" not in out  # opted out by annotation
    assert "198.51.100.10/32           node-1, node-3   (ECMP)" in moved
    assert "198.51.100.0/24            node-2, node-3   (ECMP)" in drained
    assert "node-1" not in drained.split("\n", 2)[2]
    assert "198.51.100.0/24            node-1, node-2, node-3" in undrained
    assert "198.51.100.10/32" not in deleted and "203.0.113.10/32" not in deleted
    # Custom resources, live: a BGPPeer brings router-2's session up, a BGPAdvertisement's community
    # reaches it and an edit changes it; node-1's BGPNodeStatus says both sessions are Established.
    crd = out.split("\n## ")[1:]
    assert len(crd) == 3, out
    assert "198.51.100.0/24            node-1   -" in crd[0]
    assert "198.51.100.0/24            node-1   64512:100" in crd[1]
    assert "198.51.100.0/24            node-1   64512:200" in crd[2]
    status = crd[2].split("kubectl get bgpnodestatus node-1", 1)[1]
    assert "router-2   BGPPeer/router-2 Established" in status
    assert "127.0.0.1  file             Established" in status


def test_codec_demo_runs() -> None:
    out = run("-m", "bgpsvc.app.cli", "codec-demo", timeout=60)
    assert '"203.0.113.7/32"' in out and "GRACEFUL_SHUTDOWN" in out
