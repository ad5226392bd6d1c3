"""Run ``bgpsvc run`` as a real process inside a test namespace, and read its status."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .netlab import Netns, wait_until


class BgpsvcProcess:
    """One bgpsvc speaker process in ``ns``; ended by PID only."""

    def __init__(self, ns: Netns, config: dict[str, Any], name: str) -> None:
        self.ns = ns
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"bgpsvc-{name}-"))
        self.config = dict(config)
        self.config.setdefault("control", {"address": "127.0.0.1", "port": 9179})
        self.config.setdefault("log_level", "debug")
        self.config_path = self.dir / "bgpsvc.yaml"
        self.log_path = self.dir / "bgpsvc.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def write_config(self) -> None:
        self.config_path.write_text(yaml.safe_dump(self.config))

    def start(self) -> None:
        self.write_config()
        log = self.log_path.open("ab")
        self.proc = self.ns.popen(
            [sys.executable, "-m", "bgpsvc.app.cli", "run", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_until(
            lambda: self._status_or_none() is not None, timeout=60, what=f"{self.name} control endpoint"
        )

    def _status_or_none(self) -> dict[str, Any] | None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
        try:
            return self.status()
        except (subprocess.CalledProcessError, ValueError):
            return None

    def status(self) -> dict[str, Any]:
        port = self.config["control"]["port"]
        out = self.ns.run(
            [sys.executable, "-m", "bgpsvc.app.cli", "status", "--json", "--control", f"127.0.0.1:{port}"]
        ).stdout
        data: dict[str, Any] = json.loads(out)
        return data

    def peer(self, address: str) -> dict[str, Any]:
        return next(p for p in self.status()["peers"] if p["address"] == address)

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def hup(self) -> None:
        self.signal(signal.SIGHUP)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=10)

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.terminate()  # second TERM skips the drain
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
