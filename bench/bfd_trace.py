"""``bgpsvc run`` that records its BFD transmissions and GC pauses (helper of ``bench/bfd.py --soak``).

It wraps, in this process only, ``BfdDriver._transmit`` and registers a ``gc`` callback, then runs the
ordinary CLI; bgpsvc's code is not modified. One line per record, appended to ``$BGPSVC_BFD_TRACE``::

    <time.monotonic()> tx                 a BFD packet handed to the socket
    <time.monotonic()> gc <gen> <ms>      a cyclic GC pass of at least 2 ms (time = its start)

    BGPSVC_BFD_TRACE=/tmp/trace .venv/bin/python bench/bfd_trace.py run -c bgpsvc.yaml
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bgpsvc.aio.bfd import BfdDriver
from bgpsvc.app import cli
from bgpsvc.bfd import SessionKey


def install(path: str) -> None:
    """Wrap the BFD send path and watch the collector."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def rec(text: str, t: float | None = None) -> None:
        os.write(fd, f"{time.monotonic() if t is None else t:.6f} {text}\n".encode())

    orig_transmit = BfdDriver._transmit

    def transmit(self: BfdDriver, key: SessionKey, data: bytes) -> None:
        rec("tx")
        orig_transmit(self, key, data)

    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.monotonic()
            return
        ms = (time.monotonic() - started[0]) * 1000
        if ms >= 2.0:
            rec(f"gc {info['generation']} {ms:.1f}", started[0])

    BfdDriver._transmit = transmit  # type: ignore[method-assign]
    gc.callbacks.append(on_gc)


def main() -> int:
    """Install the wrappers when ``$BGPSVC_BFD_TRACE`` is set, then run the bgpsvc CLI."""
    path = os.environ.get("BGPSVC_BFD_TRACE")
    if path:
        install(path)
    return cli.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
