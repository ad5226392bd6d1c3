"""The examples run and do what their docstrings say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_library_example_announces_withdraws_and_stops_gracefully() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "library_speaker.py"), "--port", "11279"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "[router] + 198.51.100.0/24 (ipv4-unicast)" in out
    assert "[router] + 2001:db8:10::/48 (ipv6-unicast)" in out
    assert "[router] - 203.0.113.10/32 (ipv4-unicast)" in out
    assert "[router] + 198.51.100.128/25 (ipv4-unicast)" in out
    assert "Administrative Shutdown: 'example finished'" in out


def test_codec_demo_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bgpsvc.cli", "demo"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert '"203.0.113.7/32"' in out and "GRACEFUL_SHUTDOWN" in out
