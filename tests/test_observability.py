"""Metrics operators expect, from a running node speaker, and the alert rules and dashboard that use them.

A real ``bgpsvc run`` node speaker (the lab API server behind it) peers with two library speakers on
loopback: ``tor`` takes our routes and then shuts its session down (a flap, and a Cease received),
``wrong-as`` answers with an AS we do not expect (an OPEN error we send). The scrape must carry those
counters with their labels, the build info and the process metrics; every metric an alert rule or a
dashboard panel names must be in it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bgpsvc.aio import PeerConfig, Speaker, SpeakerConfig, SpeakerStatus
from bgpsvc.app.metrics import StatusCollector, metrics_handler
from bgpsvc.app.status import AppStatus
from bgpsvc.fsm import PeerStatus
from bgpsvc.lab.apiserver import ApiServer
from bgpsvc.wire import IPV4_UNICAST
from tests.loopback import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "bgpsvc-alerts.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "bgpsvc-dashboard.json"
BGPSVC = str(Path(sys.executable).with_name("bgpsvc"))
VERSION = "0.1.0"
#: Names in PromQL that are functions, keywords or Grafana variables, not metrics.
PROMQL_WORDS = {
    "sum", "max", "min", "count", "avg", "by", "on", "and", "or", "unless", "without", "offset",
    "increase", "rate", "irate", "ignoring", "group_left", "group_right", "bool",
}  # fmt: skip

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return parse(text)


def parse(text: str) -> Samples:
    """Samples by name; a family without samples yet (a counter nothing has counted) is listed empty."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        out.setdefault(family.name + ("_total" if family.type == "counter" else ""), [])
        for s in family.samples:
            out.setdefault(s.name, []).append((dict(s.labels), s.value))
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    for got, v in samples.get(name, []):
        if all(got.get(k) == want for k, want in labels.items()):
            return v
    return None


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Samples]:
    tmp = tmp_path_factory.mktemp("obs")
    tor_port, odd_port, control = free_port("127.0.0.2"), free_port("127.0.0.3"), free_port()
    cfg = {
        "local_as": 64512,
        "router_id": "192.0.2.1",
        "listen": False,
        "control": {"address": "127.0.0.1", "port": control},
        "drain_time": 0,
        "peers": [
            {"name": "tor", "address": "127.0.0.2", "port": tor_port, "peer_as": 64513,
             "connect_retry_time": 1, "idle_hold_time": 0.2, "families": ["ipv4-unicast"]},
            {"name": "wrong-as", "address": "127.0.0.3", "port": odd_port, "peer_as": 64599,
             "connect_retry_time": 1, "idle_hold_time": 0.2, "families": ["ipv4-unicast"]},
        ],
        "kubernetes": {"service_cluster_ips": ["198.51.100.0/24"]},
    }  # fmt: skip
    (tmp / "bgpsvc.yaml").write_text(yaml.safe_dump(cfg))
    with ApiServer() as api:
        api.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}})
        env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        env.update(NODE_NAME="node-1", KUBECONFIG=str(api.write_kubeconfig(tmp / "kubeconfig")))
        log = (tmp / "bgpsvc.log").open("wb")
        proc = subprocess.Popen(
            [BGPSVC, "run", "-c", str(tmp / "bgpsvc.yaml")], env=env, stdout=log, stderr=log
        )
        try:
            yield asyncio.run(_drive(tor_port, odd_port, f"http://127.0.0.1:{control}/metrics"))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            log.close()
            print((tmp / "bgpsvc.log").read_text())


def _router(asn: int, address: str, port: int) -> Speaker:
    peer = PeerConfig("127.0.0.1", 64512, passive=True, families=(IPV4_UNICAST,))
    return Speaker(SpeakerConfig(asn, "192.0.2.9", listen=((address, port),), peers=(peer,)))


async def _drive(tor_port: int, odd_port: int, url: str) -> Samples:
    tor, odd = _router(64513, "127.0.0.2", tor_port), _router(64514, "127.0.0.3", odd_port)
    await tor.start()
    await odd.start()
    try:
        await tor.wait_established(30)
        await wait_for(lambda: tor.drivers[0].peer.session.received, 20, "our routes at tor")

        def sent_bad_peer_as() -> bool:
            got = value(scrape(url), "bgpsvc_notifications_sent_total", peer="wrong-as")
            return bool(got)

        await wait_for(sent_bad_peer_as, 20, "an OPEN error sent to wrong-as")
        await tor.stop(0)  # Cease / Administrative Shutdown: one flap at bgpsvc

        def flapped() -> Samples | None:
            samples = scrape(url)
            return samples if value(samples, "bgpsvc_session_flaps_total", peer="tor") else None

        result: Samples = await wait_for(flapped, 20, "the flap counted")
        return result
    finally:
        await odd.stop(0)


def test_session_counters_carry_their_labels(scraped: Samples) -> None:
    assert value(scraped, "bgpsvc_session_flaps_total", peer="tor") == 1
    assert value(scraped, "bgpsvc_session_flaps_total", peer="wrong-as") == 0
    assert (
        value(
            scraped,
            "bgpsvc_notifications_received_total",
            peer="tor",
            code="Cease",
            subcode="Administrative Shutdown",
        )
        == 1
    )
    sent = value(
        scraped,
        "bgpsvc_notifications_sent_total",
        peer="wrong-as",
        code="OPEN Message Error",
        subcode="Bad Peer As",
    )
    assert sent is not None and sent >= 1
    assert value(scraped, "bgpsvc_session_established", peer="tor") == 0
    assert value(scraped, "bgpsvc_routes_desired") == 1
    assert value(scraped, "bgpsvc_kubernetes_api_reachable") == 1


def test_build_info_and_process_metrics(scraped: Samples) -> None:
    (labels, v), *_ = scraped["bgpsvc_build_info"]
    assert v == 1 and labels["version"] == VERSION and re.fullmatch(r"3\.\d+\.\d+\S*", labels["python"])
    rss = value(scraped, "process_resident_memory_bytes")
    assert rss is not None and rss > 1e6
    assert value(scraped, "process_cpu_seconds_total") is not None
    assert value(scraped, "python_info") == 1
    # The cyclic collector's own figures, and what bgpsvc froze out of its sight.
    assert value(scraped, "python_gc_collections_total", generation="0") is not None
    frozen = value(scraped, "bgpsvc_gc_frozen_objects")
    assert frozen is not None and frozen >= 0


def test_update_errors_are_counted_by_rfc7606_handling() -> None:
    """A router sending junk: the typed status's counts become labelled counters."""
    peer = PeerStatus(
        name="tor",
        address="192.0.2.1",
        peer_as=64500,
        local_as=64512,
        state="Established",
        uptime=12.0,
        last_down=None,
        prefixes_sent=3,
        prefixes_received={},
        messages_sent=1,
        messages_received=1,
        updates_sent=1,
        updates_received=4,
        hold_time=90,
        families=("ipv4-unicast",),
        graceful_shutdown=False,
        unroutable=0,
        update_errors={"treat-as-withdraw": 3, "attribute-discard": 1},
    )
    status = AppStatus(SpeakerStatus(64512, "192.0.2.11", 3, 0.0, False, (peer,)))
    _, _, body = metrics_handler(StatusCollector(lambda: status))()
    samples = parse(body.decode())
    assert value(samples, "bgpsvc_update_errors_total", peer="tor", handling="treat-as-withdraw") == 3
    assert value(samples, "bgpsvc_update_errors_total", peer="tor", handling="attribute-discard") == 1
    assert value(samples, "bgpsvc_session_uptime_seconds", peer="tor") == 12


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, strings and durations removed)."""
    expr = re.sub(r"\{[^}]*\}", "", re.sub(r'"[^"]*"', "", expr))
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    words = set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", expr))
    return {w for w in words if w not in PROMQL_WORDS and "_" in w}


def rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [r for group in data["groups"] for r in group["rules"]]


def test_alert_rules_cover_what_operators_page_on() -> None:
    names = {r["alert"] for r in rules()}
    assert {"BgpsvcSessionDown", "BgpsvcSessionFlapping", "BgpsvcPrefixesGone"} <= names
    for r in rules():
        assert r["labels"]["severity"] in ("critical", "warning", "info"), r
        assert r["annotations"]["summary"], r
        assert r["expr"].count("(") == r["expr"].count(")"), r


def test_alert_rules_and_dashboard_use_metrics_that_exist(scraped: Samples) -> None:
    exported = set(scraped)
    for r in rules():
        missing = metric_names(r["expr"]) - exported
        assert not missing, f"alert {r['alert']} uses {missing}, which bgpsvc does not export"
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    for expr in exprs:
        missing = metric_names(expr) - exported
        assert not missing, f"dashboard query {expr!r} uses {missing}"
    used = set().union(*(metric_names(e) for e in exprs))
    assert {"bgpsvc_session_flaps_total", "bgpsvc_notifications_received_total", "bgpsvc_build_info"} <= used
