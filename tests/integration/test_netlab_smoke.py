"""Smoke tests for the netlab harness: two FRR routers over a veth, eBGP, kernel install, failures.

Topology::

    r1 (AS 64501)  192.0.2.1/24, 2001:db8::1/64  ====veth====  192.0.2.2/24, 2001:db8::2/64  r2 (AS 64502)

r1 originates 198.51.100.0/24 and 2001:db8:100::/48; r2 must learn them over BGP and install them in its
kernel table through zebra.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from . import netlab
from .netlab import Frr, Lab, Netns, drop_traffic, link_set, wait_until

V4_PREFIX = "198.51.100.0/24"
V6_PREFIX = "2001:db8:100::/48"
HOLD = 9  # `timers bgp 3 9`
REPO_ROOT = Path(__file__).resolve().parents[2]


def bgp_config(asn: int, router_id: str, peer_as: int, peers: tuple[str, str], originate: bool) -> str:
    v4, v6 = peers
    networks = (f"  network {V4_PREFIX}\n", f"  network {V6_PREFIX}\n") if originate else ("", "")
    return (
        textwrap.dedent(f"""\
        router bgp {asn}
         bgp router-id {router_id}
         no bgp ebgp-requires-policy
         no bgp network import-check
         no bgp default ipv4-unicast
         timers bgp 3 {HOLD}
         neighbor {v4} remote-as {peer_as}
         neighbor {v4} timers connect 2
         neighbor {v6} remote-as {peer_as}
         neighbor {v6} timers connect 2
         address-family ipv4 unicast
          neighbor {v4} activate
        """)
        + networks[0]
        + textwrap.dedent(f"""\
         exit-address-family
         address-family ipv6 unicast
          neighbor {v6} activate
        """)
        + networks[1]
        + " exit-address-family\nexit\n"
    )


@dataclass
class Pair:
    r1: Netns
    r2: Netns
    if1: str
    if2: str
    f1: Frr
    f2: Frr

    def sessions(self) -> list[tuple[Frr, str]]:
        f1, f2 = self.f1, self.f2
        return [(f1, "192.0.2.2"), (f1, "2001:db8::2"), (f2, "192.0.2.1"), (f2, "2001:db8::1")]

    def states(self) -> dict[str, str]:
        return {f"{f.name}->{peer}": f.peer_state(peer) for f, peer in self.sessions()}

    def wait_all(self, established: bool, timeout: float) -> float:
        """Wait until every session is (or no session is) Established; return the seconds it took."""
        t0 = time.monotonic()

        def done() -> dict[str, str] | None:
            states = self.states()
            ok = all((s == "Established") == established for s in states.values())
            return states if ok else None

        wait_until(done, timeout=timeout, what=f"all sessions {'up' if established else 'down'}")
        return time.monotonic() - t0


def v4_kernel_route(f: Frr) -> dict[str, Any] | None:
    return next((r for r in f.kernel_routes(4) if r["dst"] == V4_PREFIX), None)


def v6_kernel_route(f: Frr) -> dict[str, Any] | None:
    return next((r for r in f.kernel_routes(6) if r["dst"] == V6_PREFIX), None)


@pytest.fixture
def pair(lab: Lab, frr_factory: Callable[..., Frr]) -> Pair:
    r1, r2 = lab.netns("r1"), lab.netns("r2")
    if1, if2 = lab.veth(r1, r2, ["192.0.2.1/24", "2001:db8::1/64"], ["192.0.2.2/24", "2001:db8::2/64"])
    f1 = frr_factory(r1, bgp_config(64501, "192.0.2.1", 64502, ("192.0.2.2", "2001:db8::2"), True))
    f2 = frr_factory(r2, bgp_config(64502, "192.0.2.2", 64501, ("192.0.2.1", "2001:db8::1"), False))
    p = Pair(r1, r2, if1, if2, f1, f2)
    p.wait_all(established=True, timeout=30)
    return p


def test_names_and_addresses(pair: Pair) -> None:
    pid = os.getpid()
    assert pair.r1.name.startswith(f"bgpsvc-{pid}-") and pair.r1.name.endswith("-r1")
    assert pair.if1 != pair.if2
    assert all(len(i) <= 15 and str(pid) in i for i in (pair.if1, pair.if2))
    assert {"192.0.2.1/24", "2001:db8::1/64"} <= set(pair.r1.addresses(pair.if1))
    # The veth never appears in the host namespace.
    host_links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert pair.if1 not in host_links and pair.if2 not in host_links
    # FRR state is private to the instance, never the system FRR's.
    for f in (pair.f1, pair.f2):
        assert f.workdir is not None
        assert not str(f.workdir).startswith(("/etc/frr", "/var/run/frr", "/run/frr"))
        assert (f.workdir / "bgpd.vty").exists() and (f.workdir / "zserv.api").exists()
        assert f"hostname {f.name}" in f.vtysh("show running-config")


def test_route_reaches_bgp_and_kernel(pair: Pair) -> None:
    f2 = pair.f2
    summary = f2.bgp_summary()
    assert summary["ipv4Unicast"]["peers"]["192.0.2.1"]["state"] == "Established"
    assert summary["ipv6Unicast"]["peers"]["2001:db8::1"]["state"] == "Established"

    path = wait_until(lambda: f2.best_path(V4_PREFIX), timeout=15, what=f"{V4_PREFIX} best in r2 BGP")
    assert len(f2.routes("ipv4")["routes"][V4_PREFIX]) == 1
    assert [h["ip"] for h in path["nexthops"]] == ["192.0.2.1"]
    assert path["path"] == "64501"

    kroute = wait_until(lambda: v4_kernel_route(f2), timeout=15, what=f"{V4_PREFIX} in r2 kernel")
    assert kroute["gateway"] == "192.0.2.1"
    assert kroute["dev"] == pair.if2
    assert kroute["protocol"] == "bgp"

    wait_until(lambda: f2.has_route(V6_PREFIX), timeout=15, what=f"{V6_PREFIX} in r2 BGP table")
    k6 = wait_until(lambda: v6_kernel_route(f2), timeout=15, what=f"{V6_PREFIX} in r2 kernel")
    assert k6["dev"] == pair.if2 and k6["protocol"] == "bgp"
    assert k6["gateway"] == "2001:db8::1" or k6["gateway"].startswith("fe80:")

    # r1 originated the prefix, it must not install a BGP route for it.
    assert v4_kernel_route(pair.f1) is None


def test_link_cut_and_restore(pair: Pair) -> None:
    wait_until(lambda: v4_kernel_route(pair.f2), timeout=15, what="route installed before the cut")

    link_set(pair.r1, pair.if1, up=False)
    down = pair.wait_all(established=False, timeout=15)
    wait_until(lambda: v4_kernel_route(pair.f2) is None, timeout=10, what="kernel route withdrawn")
    assert "NO-CARRIER" in pair.r2.link(pair.if2)["flags"]

    link_set(pair.r1, pair.if1, up=True)
    up = pair.wait_all(established=True, timeout=30)
    wait_until(lambda: v4_kernel_route(pair.f2), timeout=15, what="kernel route back")
    # keep_addr_on_down: the IPv6 address survived the admin down.
    assert "2001:db8::1/64" in pair.r1.addresses(pair.if1)
    print(f"link cut: sessions down after {down:.1f}s, back up {up:.1f}s after restore")


def test_silent_drop_expires_hold_timer(pair: Pair) -> None:
    wait_until(lambda: v4_kernel_route(pair.f2), timeout=15, what="route installed before the drop")

    drop_traffic(pair.r1, pair.if1, on=True)
    drop_traffic(pair.r1, pair.if1, on=True)  # idempotent
    down = pair.wait_all(established=False, timeout=HOLD + 11)
    # Only the hold timer can have noticed: the link stayed up the whole time.
    assert "LOWER_UP" in pair.r1.link(pair.if1)["flags"]
    assert down > 2, f"sessions went down after {down:.1f}s, too fast for a {HOLD}s hold timer"
    for f, peer in pair.sessions():
        # Each side's own hold timer fired and its NOTIFICATION was dropped, none was received.
        nbr = f.neighbor(peer)
        assert nbr["lastNotificationReason"] == "Hold Timer Expired", (f.name, peer, nbr)
        assert nbr["lastResetDueTo"] == "BGP Notification send", (f.name, peer, nbr)

    drop_traffic(pair.r1, pair.if1, on=False)
    drop_traffic(pair.r1, pair.if1, on=False)  # idempotent
    up = pair.wait_all(established=True, timeout=30)
    wait_until(lambda: v4_kernel_route(pair.f2), timeout=15, what="kernel route back")
    print(f"silent drop: sessions down after {down:.1f}s (hold {HOLD}s), back up {up:.1f}s after restore")


def test_staticd_and_bgpd_without_zebra(lab: Lab, frr_factory: Callable[..., Frr]) -> None:
    a, b = lab.netns("a"), lab.netns("b")
    lab.veth(a, b, "203.0.113.1/24", "203.0.113.2/24")
    fa = frr_factory(
        a,
        textwrap.dedent("""\
        ip route 192.0.2.0/24 blackhole
        router bgp 64500
         no bgp ebgp-requires-policy
         neighbor 203.0.113.2 remote-as 64501
         address-family ipv4 unicast
          redistribute static
        """),
        daemons=("zebra", "bgpd", "staticd"),
    )
    fb = frr_factory(
        b,
        textwrap.dedent("""\
        router bgp 64501
         bgp router-id 203.0.113.2
         no bgp ebgp-requires-policy
         neighbor 203.0.113.1 remote-as 64500
        """),
        daemons=("bgpd",),
    )
    assert any(r["dst"] == "192.0.2.0/24" for r in fa.kernel_routes(4, proto="static"))
    fb.wait_state("203.0.113.1", "Established", timeout=30)
    wait_until(lambda: fb.has_route("192.0.2.0/24"), timeout=15, what="redistributed static in b")
    assert fb.kernel_routes(4) == []  # bgpd -Z: nothing reaches the kernel
    with pytest.raises(netlab.FrrError, match="configuration rejected"):
        fa.configure("router bgp 64500\n neighbor 203.0.113.2 no-such-knob\n")


def test_wait_until_reports_last_value() -> None:
    calls: list[int] = []

    def never() -> list[int]:
        calls.append(1)
        return []

    with pytest.raises(TimeoutError, match=r"the answer.*last value: \[\]"):
        wait_until(never, timeout=0.3, interval=0.05, what="the answer")
    assert 3 <= len(calls) <= 10

    def boom() -> bool:
        raise LookupError("not yet")

    with pytest.raises(TimeoutError, match="LookupError: not yet") as info:
        wait_until(boom, timeout=0.2, interval=0.05)
    assert isinstance(info.value.__cause__, LookupError)
    assert wait_until(lambda: "ok", timeout=1) == "ok"


@pytest.mark.parametrize("cidr", ["10.0.0.1/24", "192.168.1.1/24", "2001:db9::1/64", "8.8.8.8/32"])
def test_non_documentation_addresses_rejected(cidr: str) -> None:
    with pytest.raises(ValueError, match="documentation ranges"):
        netlab.check_address(cidr)


def _netns_names() -> set[str]:
    out = subprocess.run(["ip", "-j", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {e["name"] for e in json.loads(out or "[]")}


INNER_TEST = """
import json, os
from tests.integration.netlab import drop_traffic

def test_inner(lab, frr_factory):
    a, b = lab.netns("a"), lab.netns("b")
    ia, ib = lab.veth(a, b, "203.0.113.1/24", "203.0.113.2/24")
    drop_traffic(a, ia, True)
    proc = a.popen(["sleep", "300"])
    f = frr_factory(a, "router bgp 64500\\n neighbor 203.0.113.2 remote-as 64501\\n")
    state = {"ns": [a.name, b.name], "pids": [f.pid("zebra"), f.pid("bgpd"), proc.pid],
             "workdir": str(f.workdir)}
    with open(os.environ["NETLAB_STATE"], "w") as fh:
        json.dump(state, fh)
    assert False, "deliberate failure: cleanup must still happen"
"""

BACKSTOP_SCRIPT = """
import json, os, sys, time
from tests.integration.netlab import Lab
lab = Lab()
a = lab.netns("x")
f = lab.frr(a, "")
p = a.popen(["sleep", "300"])
json.dump({"ns": [a.name], "pids": [f.pid("zebra"), f.pid("bgpd"), p.pid], "workdir": str(f.workdir)},
          open(os.environ["NETLAB_STATE"], "w"))
if sys.argv[1] == "exit":
    sys.exit(3)  # no cleanup call: the atexit backstop must do it
time.sleep(60)  # killed with SIGTERM by the test
"""


def _assert_all_gone(state: dict[str, Any]) -> None:
    leftover = set(state["ns"]) & _netns_names()
    assert not leftover, f"namespaces left behind: {leftover}"
    for pid in state["pids"]:
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} survived"
    assert not Path(state["workdir"]).exists()


def test_fixture_cleanup_after_failing_test(lab: Lab, tmp_path: Path) -> None:
    """Run a deliberately failing test in a child pytest, then check nothing it created survived."""
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.integration.conftest"]\n')
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    state_file = tmp_path / "state.json"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), NETLAB_STATE=str(state_file))
    env.pop("NETLAB_KEEP", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-c", os.devnull, str(tmp_path / "test_inner.py")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "1 failed" in out and "deliberate failure" in out, out
    assert "FRR a" in out, "failure report should carry FRR diagnostics\n" + out
    state = json.loads(state_file.read_text())
    assert all(name.startswith("bgpsvc-") for name in state["ns"])
    _assert_all_gone(state)


@pytest.mark.parametrize("how", ["exit", "sigterm"])
def test_backstop_cleans_up_without_fixtures(lab: Lab, tmp_path: Path, how: str) -> None:
    """A process that never calls cleanup still removes its namespaces and daemons (atexit / SIGTERM)."""
    state_file = tmp_path / "state.json"
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), NETLAB_STATE=str(state_file))
    proc = subprocess.Popen(
        [sys.executable, "-c", BACKSTOP_SCRIPT, how], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env=env, cwd=REPO_ROOT,
    )  # fmt: skip
    try:
        if how == "sigterm":
            wait_until(lambda: state_file.exists() and state_file.stat().st_size, timeout=30,
                       what="child to build its lab")  # fmt: skip
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if how == "exit":
        assert proc.returncode == 3, out
    else:  # SIGTERM became netlab.Terminated (a KeyboardInterrupt), uncaught: traceback, atexit, exit 1
        assert proc.returncode == 1 and "Terminated: signal 15" in out, out
    _assert_all_gone(json.loads(state_file.read_text()))


def test_lab_fixture_namespaces_removed_at_teardown(lab: Lab) -> None:
    """Namespaces created through ``lab`` in *earlier tests* of this run are gone (teardown ran)."""
    mine = {n for n in _netns_names() if n.startswith(f"bgpsvc-{os.getpid()}-")}
    assert mine == set(netlab.live_namespaces()) == set(), mine
