"""A ConfigMap update reaches a running ``bgpsvc run`` without a pod restart.

kubelet updates a ConfigMap volume by writing the new files into a fresh timestamped directory and
swapping the ``..data`` symlink to it; ``bgpsvc.yaml`` itself is a symlink into ``..data``. The file
watch must notice even when the new file has the old size and modification time (only the inode
differs), and apply it in the same process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.loopback import free_port

BGPSVC = str(Path(sys.executable).with_name("bgpsvc"))


def config(port: int, routes: list[str], pad: int = 0) -> str:
    return (
        f"local_as: 64512\nrouter_id: 192.0.2.1\nlisten: false\ncontrol: {{port: {port}}}\n"
        "peers: [{address: 127.0.0.2, peer_as: 64513, passive: true}]\n"
        f"routes: {json.dumps(routes)}\n" + ("#" + "x" * (pad - 2) + "\n" if pad else "")
    )


def publish(volume: Path, version: int, text: str, mtime: float | None = None) -> None:
    """Write the ConfigMap's files as kubelet's atomic writer does."""
    data = volume / f"..2026_01_01_00_00_0{version}"
    data.mkdir()
    (data / "bgpsvc.yaml").write_text(text)
    if mtime is not None:
        os.utime(data / "bgpsvc.yaml", (mtime, mtime))
    tmp = volume / "..data_tmp"
    tmp.symlink_to(data.name)
    tmp.replace(volume / "..data")
    if not (volume / "bgpsvc.yaml").is_symlink():
        (volume / "bgpsvc.yaml").symlink_to("..data/bgpsvc.yaml")


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def test_a_configmap_update_is_applied_live(tmp_path: Path) -> None:
    port = free_port()
    volume = tmp_path / "etc-bgpsvc"
    volume.mkdir()
    v2 = config(port, ["198.51.100.0/24", "203.0.113.0/24"])
    v1 = config(port, ["198.51.100.0/24"])
    v1 = config(port, ["198.51.100.0/24"], pad=len(v2) - len(v1))
    assert len(v1) == len(v2)
    publish(volume, 1, v1)
    log = tmp_path / "bgpsvc.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([BGPSVC, "run", "-c", str(volume / "bgpsvc.yaml")], stdout=out, stderr=out)
    try:
        _wait(lambda: _routes(port) == 1, proc, log, "the first config")
        before = (volume / "bgpsvc.yaml").stat()
        publish(volume, 2, v2, mtime=before.st_mtime)
        after = (volume / "bgpsvc.yaml").stat()
        assert (after.st_size, after.st_mtime) == (before.st_size, before.st_mtime)
        _wait(lambda: _routes(port) == 2, proc, log, "the updated ConfigMap applied")
        assert proc.poll() is None
        assert "configuration reloaded: static routes: 1 added" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _routes(port: int) -> int | None:
    try:
        return int(status(port)["routes"])
    except OSError:
        return None


def _wait(pred: Any, proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        if pred():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()}")
