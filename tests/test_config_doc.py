"""docs/config.md is generated from the configuration dataclasses and agrees with the loader.

- The file equals ``python -m bgpsvc.app.configdoc``'s output (regenerate it after changing a field).
- Every field of every class of the config model is a documented key, or listed (with its reason) as
  not being one: a new field cannot go undocumented.
- The keys documented for each section are exactly the keys the loader reads there (recorded from a
  full config as it is parsed), so the reference and the file format cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bgpsvc.aio import SpeakerConfig
from bgpsvc.app import configdoc
from bgpsvc.app.config import ControlConfig, PeerFileFields, RunConfig, parse_config
from bgpsvc.app.schema import Section
from bgpsvc.fsm import GracefulRestartConfig, PeerConfig
from bgpsvc.k8s.config import KubernetesConfig
from bgpsvc.k8s.desired import AdvertisePolicy
from bgpsvc.rib import RouteAttrs

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "config.md"
MODEL = (
    SpeakerConfig,
    RunConfig,
    PeerConfig,
    PeerFileFields,
    GracefulRestartConfig,
    ControlConfig,
    RouteAttrs,
    KubernetesConfig,
    AdvertisePolicy,
)
#: Loader section path (index and class names generalised) -> the doc section's heading.
HEADINGS = {
    "": "Top level",
    "peers[]": "`peers[]`",
    "graceful_restart": "`graceful_restart`",
    "control": "`control`",
    "routes[]": "`routes[]` (and `routes_file` lines)",
    "kubernetes": "`kubernetes`",
    "kubernetes.attributes.CLASS": "`kubernetes.attributes.CLASS`",
    "kubernetes.service_*_ips[]": "`kubernetes.service_*_ips[]` entries",
    "kubernetes.link_bandwidth": "`kubernetes.link_bandwidth`",
    "kubernetes.damping": "`kubernetes.damping`",
    "peers[].bfd": "`peers[].bfd` (and `bfd_profiles.NAME`)",
    "bfd_profiles.NAME": "`peers[].bfd` (and `bfd_profiles.NAME`)",
}
FULL = {
    "local_as": 64512,
    "router_id": "192.0.2.11",
    "bfd_profiles": {"fast": {"min_rx_ms": 100}},
    "peers": [
        {
            "address": "192.0.2.1",
            "peer_as": 64500,
            "password_env": "PW",
            "node_selector": {"a": "b"},
            "bfd": {"multiplier": 3},
        },
        {"address": "192.0.2.2", "peer_as": 64500, "bfd": "fast"},
    ],
    "graceful_restart": {"restart_time": 60},
    "control": {"address": "127.0.0.1", "port": 9179},
    "routes": [{"prefix": "198.51.100.0/24", "med": 1}],
    "kubernetes": {
        "node_name": "n1",
        "attributes": {"cluster-ip": {"med": 1}},
        "service_loadbalancer_ips": [{"cidr": "203.0.113.0/24", "aggregation": "host-routes-only"}],
        "link_bandwidth": {"classes": ["cluster-ip"]},
        "damping": {"rise": 1},
    },
}


def documented() -> dict[str, set[str]]:
    """Heading -> the keys in its table."""
    out: dict[str, set[str]] = {}
    heading = None
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            heading = line[3:]
            out[heading] = set()
        elif heading is not None and (m := re.match(r"\| `([\w.]+)` \|", line)):
            out[heading].add(m.group(1))
    return out


def test_the_file_is_generated_and_current() -> None:
    assert DOC.read_text() == configdoc.render(), "stale: python -m bgpsvc.app.configdoc > docs/config.md"
    check = subprocess.run(
        [sys.executable, "-m", "bgpsvc.app.configdoc", "--check", str(DOC)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("cls", MODEL, ids=lambda c: c.__name__)
def test_every_field_is_documented_or_said_not_to_be_a_key(cls: type[Any]) -> None:
    keys = set().union(*documented().values())
    text = DOC.read_text()
    for f in dataclasses.fields(cls):
        if (cls, f.name) in configdoc.SKIP:
            assert f"`{cls.__name__}.{f.name}`: " in text
        else:
            assert f.name in keys, f"{cls.__name__}.{f.name} is missing from docs/config.md"
            assert f.metadata.get("doc"), f"{cls.__name__}.{f.name} has no doc(...) metadata"


def test_an_undocumented_field_fails_the_generator() -> None:
    @dataclasses.dataclass(frozen=True)
    class New:
        documented: int = dataclasses.field(default=1, metadata={"doc": "yes"})
        forgotten: int = 2

    with pytest.raises(ValueError, match=r"New\.forgotten: no doc"):
        configdoc.rows(configdoc.DocSection("x", "", (New,)))


def test_the_documented_keys_are_the_keys_the_loader_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    read: dict[str, set[str]] = {}
    finish = Section.finish

    def record(self: Section) -> None:
        path = re.sub(r"\[\d+\]", "[]", self.path)
        path = re.sub(r"^kubernetes\.attributes\.[\w-]+$", "kubernetes.attributes.CLASS", path)
        path = re.sub(r"^kubernetes\.service_\w+_ips\[\]$", "kubernetes.service_*_ips[]", path)
        path = re.sub(r"^bfd_profiles\.[\w-]+$", "bfd_profiles.NAME", path)
        read.setdefault(path, set()).update(self.used)
        finish(self)

    monkeypatch.setattr(Section, "finish", record)
    parse_config(FULL, env={"PW": ""})
    read.pop("kubernetes.attributes", None)  # the class names themselves
    docs = documented()
    assert set(read) == set(HEADINGS), read
    for path, keys in read.items():
        assert docs[HEADINGS[path]] == keys, path
