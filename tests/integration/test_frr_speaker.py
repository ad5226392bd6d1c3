"""bgpsvc against real FRR in network namespaces (issue 3).

Topology: one FRR namespace (the router) and one namespace per speaker, each joined to the router by
its own veth. Link ``i`` (1-based) uses 192.0.2.(16(i-1))/28 with the router at .1 and the speaker at
.11 of that block, and 2001:db8:0:i::/64 with ::1 / ::11. Every speaker is a real ``bgpsvc run``
process; every check reads FRR's JSON or the router namespace's kernel routing table.
"""

from __future__ import annotations

import signal
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from .netlab import Frr, Lab, Netns, drop_traffic, wait_until
from .speaker import BgpsvcProcess

V4_ROUTE, V6_ROUTE = "198.51.100.0/24", "2001:db8:100::/48"
HOLD = 9


def router_v4(i: int) -> str:
    return f"192.0.2.{16 * (i - 1) + 1}"


def speaker_v4(i: int) -> str:
    return f"192.0.2.{16 * (i - 1) + 11}"


def router_v6(i: int) -> str:
    return f"2001:db8:0:{i}::1"


def speaker_v6(i: int) -> str:
    return f"2001:db8:0:{i}::11"


def frr_config(asn: int, neighbors: list[tuple[str, int]], neighbor_extra: str = "") -> str:
    lines = [
        f"router bgp {asn}",
        " bgp router-id 192.0.2.1",
        " no bgp ebgp-requires-policy",
        " no bgp default ipv4-unicast",
        " bgp bestpath as-path multipath-relax",
        " bgp graceful-restart",
    ]
    for addr, peer_as in neighbors:
        lines += [f" neighbor {addr} remote-as {peer_as}", f" neighbor {addr} timers connect 1"]
        lines += [
            " " + x.strip().replace("{addr}", addr)
            for x in textwrap.dedent(neighbor_extra).splitlines()
            if x.strip()
        ]
    for af in ("ipv4", "ipv6"):
        lines += [f" address-family {af} unicast", "  maximum-paths 8", "  maximum-paths ibgp 8"]
        lines += [f"  neighbor {addr} activate" for addr, _ in neighbors]
        lines.append(" exit-address-family")
    return "\n".join(lines) + "\nexit\n"


def speaker_config(i: int, local_as: int, peer_as: int, **peer: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "address": router_v4(i),
        "peer_as": peer_as,
        "connect_retry_time": 1,
        "next_hop_v6": speaker_v6(i),
    }
    p.update(peer)
    return {
        "local_as": local_as,
        "router_id": speaker_v4(i),
        "listen": False,
        "drain_time": 2,
        "shutdown_message": "bgpsvc node maintenance",
        "graceful_restart": {"restart_time": 60},
        "peers": [{k: v for k, v in p.items() if v is not None}],
        "routes": [
            {"prefix": V4_ROUTE, "med": 10, "communities": ["64512:100"], "large_communities": ["64512:1:2"]},
            {"prefix": V6_ROUTE, "med": 20},
        ],
    }


@dataclass
class Topo:
    lab: Lab
    frr_factory: Callable[..., Frr]
    router_ns: Netns
    frr: Frr | None = None
    nodes: list[Netns] = field(default_factory=list)
    router_ifs: list[str] = field(default_factory=list)
    speakers: list[BgpsvcProcess] = field(default_factory=list)

    def add_nodes(self, n: int) -> None:
        for i in range(1, n + 1):
            ns = self.lab.netns(f"s{i}")
            rif, _ = self.lab.veth(
                self.router_ns,
                ns,
                [f"{router_v4(i)}/28", f"{router_v6(i)}/64"],
                [f"{speaker_v4(i)}/28", f"{speaker_v6(i)}/64"],
            )
            self.nodes.append(ns)
            self.router_ifs.append(rif)

    def start_router(self, asn: int, peer_as: int, neighbor_extra: str = "") -> Frr:
        neighbors = [(speaker_v4(i), peer_as) for i in range(1, len(self.nodes) + 1)]
        self.frr = self.frr_factory(self.router_ns, frr_config(asn, neighbors, neighbor_extra), "router")
        return self.frr

    def speaker(self, i: int, config: dict[str, Any]) -> BgpsvcProcess:
        sp = BgpsvcProcess(self.nodes[i - 1], config, f"s{i}")
        self.speakers.append(sp)
        sp.start()
        return sp


@pytest.fixture
def topo(lab: Lab, frr_factory: Callable[..., Frr]) -> Iterator[Topo]:
    t = Topo(lab, frr_factory, lab.netns("router"))
    try:
        yield t
    finally:
        for sp in t.speakers:
            sp.stop()


def path_of(frr: Frr, prefix: str, family: str = "ipv4") -> dict[str, Any] | None:
    paths = frr.json(f"show bgp {family} unicast {prefix}").get("paths") or []
    return paths[0] if paths else None


def paths_of(frr: Frr, prefix: str, family: str = "ipv4") -> list[dict[str, Any]]:
    return list(frr.json(f"show bgp {family} unicast {prefix}").get("paths") or [])


def kernel_route(frr: Frr, prefix: str, family: int = 4) -> dict[str, Any] | None:
    return next((r for r in frr.kernel_routes(family) if r["dst"] == prefix), None)


def single(
    topo: Topo, router_as: int, local_as: int, neighbor_extra: str = "", **peer: Any
) -> tuple[Frr, BgpsvcProcess]:
    topo.add_nodes(1)
    frr = topo.start_router(router_as, local_as, neighbor_extra)
    sp = topo.speaker(1, speaker_config(1, local_as, router_as, **peer))
    return frr, sp


@pytest.mark.parametrize("local_as", [64512, 4200000001], ids=["2-octet-AS", "4-octet-AS"])
def test_ebgp_routes_arrive_with_our_attributes_then_withdraw(topo: Topo, local_as: int) -> None:
    frr, sp = single(topo, 64500, local_as)
    frr.wait_state(speaker_v4(1), timeout=30)
    p4 = wait_until(lambda: path_of(frr, V4_ROUTE), timeout=20, what="IPv4 route at FRR")
    assert p4["aspath"]["string"] == str(local_as)
    assert p4["metric"] == 10
    assert p4["community"]["string"] == "64512:100"
    assert p4["largeCommunity"]["string"] == "64512:1:2"
    assert p4["origin"] == "IGP"
    assert p4["nexthops"][0]["ip"] == speaker_v4(1)
    assert "locPrf" not in p4  # no LOCAL_PREF over eBGP
    p6 = wait_until(lambda: path_of(frr, V6_ROUTE, "ipv6"), timeout=20, what="IPv6 route at FRR")
    assert p6["aspath"]["string"] == str(local_as) and p6["metric"] == 20
    assert p6["nexthops"][0]["ip"] == speaker_v6(1)
    gr = frr.neighbor(speaker_v4(1))["gracefulRestartInfo"]
    assert gr["endOfRibRecv"] == {"ipv4Unicast": True, "ipv6Unicast": True}
    assert wait_until(lambda: kernel_route(frr, V4_ROUTE), timeout=10, what="kernel route")[
        "gateway"
    ] == speaker_v4(1)
    # Withdraw through a config change + SIGHUP: only the difference is sent.
    sp.config["routes"] = sp.config["routes"][1:]
    sp.write_config()
    sp.hup()
    wait_until(lambda: path_of(frr, V4_ROUTE) is None, timeout=20, what="IPv4 withdrawal")
    assert path_of(frr, V6_ROUTE, "ipv6") is not None
    wait_until(lambda: kernel_route(frr, V4_ROUTE) is None, timeout=10, what="kernel route removed")


def test_ibgp_sends_local_pref_and_empty_as_path(topo: Topo) -> None:
    frr, _ = single(topo, 64512, 64512)
    frr.wait_state(speaker_v4(1), timeout=30)
    p4 = wait_until(lambda: path_of(frr, V4_ROUTE), timeout=20, what="IPv4 route at FRR")
    assert p4["aspath"]["length"] == 0 and not p4["aspath"].get("segments")  # FRR prints it as "Local"
    assert p4["locPrf"] == 100
    assert p4["peer"]["type"] == "internal"
    assert p4["nexthops"][0]["ip"] == speaker_v4(1)


def test_two_speakers_give_an_ecmp_route_in_the_kernel(topo: Topo) -> None:
    topo.add_nodes(2)
    frr = topo.start_router(64500, 64512)
    for i in (1, 2):
        topo.speaker(i, speaker_config(i, 64512, 64500))
    for i in (1, 2):
        frr.wait_state(speaker_v4(i), timeout=30)

    def ecmp() -> dict[str, Any] | None:
        r = kernel_route(frr, V4_ROUTE)
        return r if r and len(r.get("nexthops", [])) == 2 else None

    route = wait_until(ecmp, timeout=20, what="2-way ECMP kernel route")
    assert {nh["gateway"] for nh in route["nexthops"]} == {speaker_v4(1), speaker_v4(2)}
    assert len(paths_of(frr, V4_ROUTE)) == 2


def test_link_cut_expires_the_hold_timer_and_the_session_recovers(topo: Topo) -> None:
    frr, sp = single(topo, 64500, 64512, neighbor_extra=f"neighbor {{addr}} timers 3 {HOLD}", hold_time=HOLD)
    frr.wait_state(speaker_v4(1), timeout=30)
    drop_traffic(topo.router_ns, topo.router_ifs[0], True)
    try:
        t0 = time.monotonic()
        wait_until(
            lambda: sp.peer(router_v4(1))["state"] != "Established",
            timeout=HOLD + 10,
            what="our hold timer to expire",
        )
        assert time.monotonic() - t0 >= HOLD - 1
        assert "hold timer expired" in sp.peer(router_v4(1))["last_down"]
        wait_until(lambda: frr.peer_state(speaker_v4(1)) != "Established", timeout=HOLD + 10, what="FRR down")
    finally:
        drop_traffic(topo.router_ns, topo.router_ifs[0], False)
    frr.wait_state(speaker_v4(1), timeout=60)
    wait_until(lambda: sp.peer(router_v4(1))["state"] == "Established", timeout=30, what="we recover")
    wait_until(lambda: path_of(frr, V4_ROUTE), timeout=20, what="route back")


def test_md5_matching_password_establishes(topo: Topo) -> None:
    frr, _ = single(
        topo, 64500, 64512, neighbor_extra="neighbor {addr} password bgpsvc-s3cret", password="bgpsvc-s3cret"
    )
    frr.wait_state(speaker_v4(1), timeout=30)
    wait_until(lambda: path_of(frr, V4_ROUTE), timeout=20, what="route over MD5 session")


def tcp_counter(ns: Netns, name: str) -> int:
    """A kernel TCP counter of the namespace (``nstat -asz``: absolute, no history file touched)."""
    out = ns.run(["nstat", "-asz", name]).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields and fields[0] == name:
            return int(fields[1])
    raise AssertionError(f"{name} not in nstat output: {out!r}")


def test_md5_wrong_password_never_establishes(topo: Topo) -> None:
    frr, sp = single(
        topo, 64500, 64512, neighbor_extra="neighbor {addr} password right-one", password="wrong-one"
    )
    # Proof that our attempts reached the router and were refused for their signature, not ignored:
    # its kernel counts segments with a wrong MD5 digest (RFC 2385 §3).
    wait_until(
        lambda: tcp_counter(topo.router_ns, "TcpExtTCPMD5Failure") >= 2,
        timeout=20,
        what="the router's kernel to reject our MD5-signed segments",
    )
    assert frr.peer_state(speaker_v4(1)) != "Established"
    assert sp.peer(router_v4(1))["state"] != "Established"


def test_gtsm_on_both_ends_establishes(topo: Topo) -> None:
    # FRR with ttl-security drops anything below TTL 255 (IP_MINTTL), so this proves we send with 255.
    frr, _ = single(
        topo, 64500, 64512, neighbor_extra="neighbor {addr} ttl-security hops 1", ttl_security=True
    )
    frr.wait_state(speaker_v4(1), timeout=30)
    assert frr.neighbor(speaker_v4(1))["externalBgpNbrMaxHopsAway"] == 1
    wait_until(lambda: path_of(frr, V4_ROUTE), timeout=20, what="route over GTSM session")


def test_gtsm_rejects_a_peer_sending_ttl_1(topo: Topo) -> None:
    # FRR without ttl-security sends eBGP with TTL 1: our IP_MINTTL 255 must keep the session down.
    frr, sp = single(topo, 64500, 64512, ttl_security=True)
    ns = topo.nodes[0]
    before = tcp_counter(ns, "TcpExtTCPMinTTLDrop")
    # Proof that segments from the router arrived and were dropped for their TTL (RFC 5082 §3).
    wait_until(
        lambda: tcp_counter(ns, "TcpExtTCPMinTTLDrop") >= before + 2,
        timeout=20,
        what="our kernel to drop the router's TTL-1 segments",
    )
    assert frr.peer_state(speaker_v4(1)) != "Established"
    assert sp.peer(router_v4(1))["state"] != "Established"


def test_graceful_restart_keeps_routes_through_kill_9(topo: Topo) -> None:
    frr, sp = single(topo, 64500, 64512)
    frr.wait_state(speaker_v4(1), timeout=30)
    wait_until(lambda: path_of(frr, V4_ROUTE) and kernel_route(frr, V4_ROUTE), timeout=20, what="route")
    sp.kill9()
    # FRR notices the TCP reset (or the hold timer) and keeps our routes, marked stale.
    stale = wait_until(
        lambda: (p := path_of(frr, V4_ROUTE)) and p.get("stale") and p,
        timeout=HOLD * 12,
        what="route marked stale",
    )
    assert stale["stale"] is True
    sp.start()  # the restarted speaker: R bit set, re-advertises, then End-of-RIB
    seen_missing = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        p = path_of(frr, V4_ROUTE)
        if p is None or kernel_route(frr, V4_ROUTE) is None:
            seen_missing = True
            break
        if frr.peer_state(speaker_v4(1)) == "Established" and not p.get("stale"):
            break
        time.sleep(0.1)
    assert not seen_missing, "the route was withdrawn during the restart"
    p = path_of(frr, V4_ROUTE)
    assert p is not None and not p.get("stale") and p["metric"] == 10
    assert frr.neighbor(speaker_v4(1))["gracefulRestartInfo"]["rBit"] is True


def test_graceful_shutdown_community_then_withdrawal_then_rfc9003_message(topo: Topo) -> None:
    frr, sp = single(topo, 64500, 64512)
    frr.wait_state(speaker_v4(1), timeout=30)
    wait_until(lambda: path_of(frr, V4_ROUTE) and path_of(frr, V6_ROUTE, "ipv6"), timeout=20, what="routes")
    sp.signal(signal.SIGTERM)

    def gshut(prefix: str, family: str) -> bool:
        p = path_of(frr, prefix, family)
        return bool(p) and "graceful-shutdown" in str(p.get("community", {}).get("string", ""))

    wait_until(
        lambda: gshut(V4_ROUTE, "ipv4") and gshut(V6_ROUTE, "ipv6"),
        timeout=10,
        what="GRACEFUL_SHUTDOWN on every route",
    )
    assert frr.peer_state(speaker_v4(1)) == "Established"  # still draining
    wait_until(
        lambda: path_of(frr, V4_ROUTE) is None and path_of(frr, V6_ROUTE, "ipv6") is None,
        timeout=15,
        what="withdrawal after the drain",
    )
    assert sp.wait_exit(15) == 0
    nb = frr.neighbor(speaker_v4(1))
    text = " ".join(str(nb.get(k, "")) for k in nb if "last" in k.lower() or "notification" in k.lower())
    assert "bgpsvc node maintenance" in text, {k: v for k, v in nb.items() if "last" in k.lower()}


def test_restart_exit_leaves_routes_for_graceful_restart(topo: Topo) -> None:
    frr, sp = single(topo, 64500, 64512)
    frr.wait_state(speaker_v4(1), timeout=30)
    wait_until(lambda: path_of(frr, V4_ROUTE), timeout=20, what="route")
    sp.signal(signal.SIGUSR1)
    assert sp.wait_exit(10) == 0
    p = wait_until(lambda: (q := path_of(frr, V4_ROUTE)) and q.get("stale") and q, timeout=20, what="stale")
    assert p["stale"] is True and kernel_route(frr, V4_ROUTE) is not None


def test_clear_soft_in_triggers_a_full_resend(topo: Topo) -> None:
    frr, sp = single(topo, 64500, 64512)
    frr.wait_state(speaker_v4(1), timeout=30)
    wait_until(lambda: path_of(frr, V4_ROUTE), timeout=20, what="route")
    before = sp.peer(router_v4(1))["updates_sent"]
    frr.vtysh("clear bgp * soft in")
    # Both families come again: at least one UPDATE each, plus BoRR/EoRR (enhanced route refresh).
    wait_until(lambda: sp.peer(router_v4(1))["updates_sent"] >= before + 2, timeout=20, what="re-sent table")
    assert path_of(frr, V4_ROUTE) is not None
