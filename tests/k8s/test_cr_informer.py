"""Informers over custom resources and Secrets through the official client (``CustomObjectListerWatcher``,
``secret_informer``): an absent CRD lists as empty and is picked up once installed; a Secret informer sees
only the Secret it names."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from bgpsvc.k8s.customlw import CustomObjectListerWatcher
from bgpsvc.k8s.informer import Informer, secret_informer
from bgpsvc.k8s.resources import peer_from_dict, secret_from_dict
from bgpsvc.lab import ApiServer

from .conftest import wait_until

CRDS = Path(__file__).resolve().parents[2] / "deploy" / "manifests" / "01-crds.yaml"


def test_an_absent_crd_is_empty_until_installed(lab: ApiServer, api_client: Any) -> None:
    lw = CustomObjectListerWatcher(api_client, "bgpsvc.io", "v1alpha1", "bgppeers", absent_recheck=0.2)
    inf = Informer(lw, peer_from_dict).start()
    try:
        assert inf.wait_synced(5) and len(inf.snapshot()) == 0 and lw.absent
        lab.load_manifests(CRDS)
        lab.apply({"apiVersion": "bgpsvc.io/v1alpha1", "kind": "BGPPeer", "metadata": {"name": "tor-a"},
                   "spec": {"address": "192.0.2.1", "peerASN": 64500}})  # fmt: skip
        wait_until(lambda: ("", "tor-a") in inf.snapshot(), 5, "the BGPPeer after the CRD appeared")
        assert inf.snapshot()[("", "tor-a")].peer.peer_as == 64500
        assert inf.healthy and not lw.absent
    finally:
        inf.stop()


def test_a_secret_informer_sees_its_secret_only(lab: ApiServer, api_client: Any) -> None:
    def secret(ns: str, name: str, value: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": ns, "name": name},
                "data": {"password": base64.b64encode(value.encode()).decode()}}  # fmt: skip

    lab.apply(secret("bgpsvc-system", "md5", "one"))
    lab.apply(secret("bgpsvc-system", "other", "x"))
    lab.apply(secret("default", "md5", "y"))
    inf = secret_informer(api_client, "bgpsvc-system", "md5", converter=secret_from_dict).start()
    try:
        assert inf.wait_synced(5)
        assert list(inf.snapshot()) == [("bgpsvc-system", "md5")]
        assert inf.snapshot()[("bgpsvc-system", "md5")].get("password") == b"one"
        lab.apply(secret("bgpsvc-system", "md5", "two"))
        wait_until(lambda: inf.snapshot()[("bgpsvc-system", "md5")].get("password") == b"two", 5, "rotation")
        lab.delete("Secret", "bgpsvc-system", "md5")
        wait_until(lambda: not inf.snapshot(), 5, "deletion")
    finally:
        inf.stop()
