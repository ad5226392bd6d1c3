"""The client: HTTP GETs to service IPs, each over a NEW TCP connection (so each request is a new flow
that the router hashes on its own), run inside the client namespace.

One line per request on stdout-like ``--out`` file: ``<monotonic start> <target> ok <node> <ms>`` or
``<monotonic start> <target> fail <reason> <ms>``. CLOCK_MONOTONIC is host-wide, so the test can
compare these times with its own ``time.monotonic()``. Stops on SIGTERM, after ``--count`` rounds or
after ``--duration`` seconds (a bound, in case nobody stops it).
"""

from __future__ import annotations

import argparse
import errno
import signal
import socket
import time

stopping = False


def _stop(signum: int, frame: object) -> None:
    global stopping  # noqa: PLW0603
    stopping = True


def complete(data: bytes) -> bool:
    """Whether ``data`` holds the whole response (headers and Content-Length bytes of body)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def get(ip: str, port: int, timeout: float) -> tuple[bool, str]:
    """One request on a fresh connection: (True, node name) or (False, reason)."""
    deadline = time.monotonic() + timeout
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((ip, port))
        sock.sendall(f"GET / HTTP/1.0\r\nHost: {ip}\r\n\r\n".encode())
        data = b""
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            if complete(data):
                break
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.0 200") or not body.strip():
            return False, "bad-response"
        return True, body.strip().decode()
    except TimeoutError:
        return False, "timeout"
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, type(exc).__name__)
        return False, name
    finally:
        sock.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--targets", required=True, help="comma-separated service IPs, asked in turn")
    ap.add_argument("--port", type=int, default=80)
    ap.add_argument("--timeout", type=float, default=1.5)
    ap.add_argument("--interval", type=float, default=0.005, help="pause between requests")
    ap.add_argument("--count", type=int, default=0, help="stop after this many rounds (0: no limit)")
    ap.add_argument("--duration", type=float, default=300.0, help="stop after this many seconds")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _stop)
    targets = args.targets.split(",")
    end = time.monotonic() + args.duration
    rounds = 0
    with open(args.out, "w", buffering=1) as out:
        out.write(f"# started {time.monotonic():.6f}\n")
        while not stopping and time.monotonic() < end and (not args.count or rounds < args.count):
            for target in targets:
                t0 = time.monotonic()
                ok, what = get(target, args.port, args.timeout)
                ms = (time.monotonic() - t0) * 1000
                out.write(f"{t0:.6f} {target} {'ok' if ok else 'fail'} {what} {ms:.2f}\n")
            rounds += 1
            if args.interval:
                time.sleep(args.interval)
        out.write(f"# stopped {time.monotonic():.6f}\n")


if __name__ == "__main__":
    main()
