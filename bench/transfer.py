"""Route transfer: N IPv4 /32 routes from a preloaded sender into one FRR receiver, five senders in one run.

Senders: bgpsvc (``bgpsvc run`` with a ``routes_file``), GoBGP (``gobgpd``, routes injected from a
generated MRT TABLE_DUMP_V2 file), BIRD 2 (``protocol static`` blackhole routes), ExaBGP (static routes
in its configuration) and FRR itself (bgpd with ``network`` statements and ``no bgp network
import-check``).

Topology (one fresh pair of network namespaces and one fresh receiver per run, built with
``tests/integration/netlab.py``)::

    tx: sender, AS 64512, 192.0.2.2/24  <--veth-->  rx: FRR bgpd only, AS 64500, 192.0.2.1/24

Procedure of one run:

1. Start the receiver (``bgpd -Z``: no zebra, so nothing it learns is ever installed in a kernel) with
   its neighbor ``shutdown``, ``no bgp ebgp-requires-policy`` and ``timers connect 1``.
2. Start the sender and preload all N routes; wait (bounded) until the sender reports them loaded:
   bgpsvc's "N routes" start-up log line, ``gobgp global rib summary``, ``birdc show route count``,
   ExaBGP's "loaded new configuration successfully", the FRR sender's ``tableVersion``. GoBGP's
   neighbor is only added, and BIRD's BGP protocol only enabled, after that.
3. ``no neighbor shutdown`` on the receiver (and enable the sender side where it was held back).
4. Poll the receiver's ``show bgp ipv4 unicast summary json`` over bgpd's vty unix socket (a persistent
   connection speaking vtysh's protocol: about 50 us per poll when idle, so polling barely loads the
   receiver) every ``--poll`` seconds. **time** = first poll showing ``pfxRcd >= N`` minus first poll
   showing ``Established``; both instants are the poll replies' arrival times, so each is late by about
   one poll interval (FRR's ``peerUptimeMsec`` only has 1 s resolution, so it is not used). While bgpd
   is busy with a batch of UPDATEs the reply waits, so intervals stretch during big transfers; the
   median and max interval are reported. ``pfxRcd`` counts paths accepted into the receiver's table,
   before best-path selection. **99%** = the same to ``pfxRcd >= 0.99 N``.
5. **CPU** = utime+stime (all threads, plus live descendants and reaped children) of the sender's
   processes between the last poll *before* Established and the poll that saw all N; **peak RSS** =
   VmHWM summed over those processes at the end (it includes the preload). **rx CPU** is the receiver
   bgpd's CPU over the same span and **other CPU** the rest of the host's busy time (the poller, softirq
   work for the veth, and anything else running on the machine: a noise indicator).

Sender settings chosen so that no sender waits on purpose: bgpsvc ``connect_retry_time: 1``,
``drain_time: 0``; FRR sender ``coalesce-time 0`` (FRR's default 1 s update-group coalesce delay would
otherwise be most of its time at 10k); BIRD ``connect delay time 1``. Known sender quirks measured as is:
BIRD 2.0.12 sends its last partial feed batch (< 256 routes) and End-of-RIB about 1 s after the rest
(seen as time >> 99% time at 10k); ``gobgp mrt inject`` (3.10) loses the tail of its gRPC stream, so the
MRT file is padded with copies of its first record (see ``GobgpSender``).

The advertised prefixes are NLRI only and never carry traffic: /32s from 203.0.113.0/24 when N <= 256,
otherwise consecutive /32s from 10.0.0.0/8. They are never installed in any routing table: the receiver
runs bgpd without zebra, the FRR sender likewise (``network`` statements, no staticd), BIRD has no
``protocol kernel``, and GoBGP, ExaBGP and bgpsvc do not touch the kernel FIB. Only 192.0.2.0/24 carries
traffic, on a veth pair between two namespaces the benchmark creates and deletes. Processes are ended by
PID only; every wait is bounded.

With ``--repeat R`` every (size, sender) pair runs R times (interleaved) and the run with the **median**
time is reported (the lower middle one for even R), with that run's CPU and RSS; ``--json``/``--json-out``
keep every run.

    sudo .venv/bin/python bench/transfer.py [--sizes 10000,100000] [--senders bgpsvc,gobgp,bird,exabgp,frr]
        [--repeat 3] [--poll 0.01] [--json | --json-out FILE] [--trace] [--bgpsvc-peer KEY=VALUE]
        [--bgpsvc-profile DIR]
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import ipaddress
import itertools
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TextIO

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.integration import netlab  # noqa: E402

RX_AS, TX_AS = 64500, 64512
RX_ADDR, TX_ADDR = "192.0.2.1", "192.0.2.2"
_VENV_PYTHON = REPO / ".venv" / "bin" / "python"
PYTHON = str(_VENV_PYTHON) if _VENV_PYTHON.exists() else sys.executable
EXABGP = str(Path(PYTHON).parent / "exabgp")
ALL_SENDERS = ("bgpsvc", "gobgp", "bird", "exabgp", "frr")
CLK_TCK = os.sysconf("SC_CLK_TCK")
LOG_TAIL_LINES = 25
GOBGP_PAD = 20_000


class SenderError(RuntimeError):
    """A sender failed to start, preload or stay up."""


# --------------------------------------------------------------------------------------------------
# prefixes, MRT
# --------------------------------------------------------------------------------------------------


def prefixes(n: int) -> list[str]:
    """N distinct /32s: 203.0.113.0/24 for N <= 256, else 10.0.0.0/8 (never installed anywhere)."""
    if n <= 256:
        base = int(ipaddress.IPv4Address("203.0.113.0"))
    elif n <= 1 << 24:
        base = int(ipaddress.IPv4Address("10.0.0.0"))
    else:
        raise ValueError(f"N={n}: at most {1 << 24} routes (10.0.0.0/8 /32s)")
    return [f"{ipaddress.IPv4Address(base + i)}/32" for i in range(n)]


def mrt_table_dump_v2(nets: Sequence[str], next_hop: str, peer_as: int, peer_ip: str) -> bytes:
    """An MRT TABLE_DUMP_V2 file (RFC 6396 §4.3): PEER_INDEX_TABLE, then one RIB_IPV4_UNICAST per prefix.

    Every entry has ORIGIN IGP, an empty AS_PATH (4-octet AS encoding, as §4.3.4 requires) and NEXT_HOP
    ``next_hop``, encoded with bgpsvc's codec.
    """
    from bgpsvc.wire import AsPath, NextHop, Origin, encode_attributes  # noqa: PLC0415

    # The default Negotiated context encodes 4-octet AS numbers.
    attrs = encode_attributes((Origin(0), AsPath(), NextHop(ipaddress.IPv4Address(next_hop))))
    now = int(time.time())
    type_td2, sub_peer_index, sub_rib_v4 = 13, 1, 2

    def record(subtype: int, body: bytes) -> bytes:
        return struct.pack("!IHHI", now, type_td2, subtype, len(body)) + body

    peer_entry = struct.pack(
        "!B4s4sI", 0x02, ipaddress.IPv4Address(peer_ip).packed, ipaddress.IPv4Address(peer_ip).packed, peer_as
    )  # type bit 1: AS4, IPv4
    index = struct.pack("!4sH", ipaddress.IPv4Address(peer_ip).packed, 0) + struct.pack("!H", 1) + peer_entry
    out = [record(sub_peer_index, index)]
    entry = struct.pack("!HIH", 0, now, len(attrs)) + attrs
    for seq, text in enumerate(nets):
        net = ipaddress.IPv4Network(text)
        plen = net.prefixlen
        body = (
            struct.pack("!IB", seq, plen)
            + net.network_address.packed[: (plen + 7) // 8]
            + struct.pack("!H", 1)
            + entry
        )
        out.append(record(sub_rib_v4, body))
    return b"".join(out)


# --------------------------------------------------------------------------------------------------
# /proc accounting
# --------------------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tasks:
        with contextlib.suppress(OSError, ValueError):
            kids += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    return kids


def process_tree(roots: Sequence[int]) -> list[int]:
    """``roots`` and all their live descendants."""
    seen: list[int] = []
    todo = list(roots)
    while todo:
        pid = todo.pop()
        if pid in seen or not Path(f"/proc/{pid}").exists():
            continue
        seen.append(pid)
        todo += _children(pid)
    return seen


def cpu_seconds(roots: Sequence[int]) -> float:
    """utime+stime (+ reaped children's) of ``roots`` and their live descendants, in seconds."""
    ticks = 0
    for pid in process_tree(roots):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            # after "pid (comm)": fields[0] is field 3 (state); utime=14, stime=15, cutime=16, cstime=17
            ticks += sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ticks / CLK_TCK


def host_busy_seconds() -> float:
    """Non-idle CPU time of the whole host since boot (all CPUs), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def peak_rss_mb(roots: Sequence[int]) -> float:
    """Sum of VmHWM over ``roots`` and their live descendants, in MiB."""
    kib = 0
    for pid in process_tree(roots):
        with contextlib.suppress(OSError):
            m = re.search(r"^VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text(), re.M)
            if m:
                kib += int(m.group(1))
    return kib / 1024


# --------------------------------------------------------------------------------------------------
# FRR vty client (persistent unix-socket connection, the protocol vtysh speaks)
# --------------------------------------------------------------------------------------------------


class Vty:
    """Commands to one FRR daemon over its vty socket: send ``cmd\\0``, read until ``\\0\\0\\0<status>``."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))

    def command(self, cmd: str) -> str:
        self.sock.sendall(cmd.encode() + b"\0")
        buf = bytearray()
        while True:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("vty socket closed")
            buf += chunk
            if len(buf) >= 4 and buf[-4:-1] == b"\0\0\0":
                status = buf[-1]
                text = buf[:-4].decode(errors="replace")
                if status != 0:
                    raise netlab.FrrError(f"vty command {cmd!r} failed ({status}): {text[:300]}")
                return text

    def json(self, cmd: str) -> Any:
        return json.loads(self.command(cmd))

    def close(self) -> None:
        self.sock.close()


# --------------------------------------------------------------------------------------------------
# senders
# --------------------------------------------------------------------------------------------------


@dataclass
class RunContext:
    """What a sender gets: its namespace, a private work dir, the routes and the bounded preload time."""

    ns: netlab.Netns
    lab: netlab.Lab
    workdir: Path
    nets: list[str]
    preload_timeout: float
    bgpsvc_peer: dict[str, Any] = field(default_factory=dict)
    bgpsvc_profile: Path | None = None

    @property
    def n(self) -> int:
        return len(self.nets)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} unreadable)"
    return "\n".join(text[-lines:])


class Sender(abc.ABC):
    """One sender implementation. ``start`` returns once every route is loaded (bounded)."""

    name: ClassVar[str]

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = ctx.workdir / f"{self.name}.log"

    # process helpers -------------------------------------------------------------------------

    def _popen(self, argv: Sequence[str], env: dict[str, str] | None = None) -> None:
        with self.log_path.open("ab") as log:
            self.proc = self.ctx.ns.popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=str(self.ctx.workdir),
            )

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise netlab.AbortWait(f"{self.name} exited with {self.proc.returncode}")

    def _wait(self, predicate: Callable[[], Any], what: str, timeout: float | None = None) -> Any:
        def check() -> Any:
            self._check_alive()
            return predicate()

        try:
            limit = timeout or self.ctx.preload_timeout
            return netlab.wait_until(check, timeout=limit, interval=0.1, what=what)
        except (TimeoutError, netlab.AbortWait) as exc:
            raise SenderError(f"{self.name}: {exc}") from None

    def _run(self, argv: Sequence[str], timeout: float = 60) -> str:
        proc = self.ctx.ns.run(list(argv), check=False, timeout=timeout)
        if proc.returncode != 0:
            raise SenderError(
                f"{self.name}: {' '.join(argv)} exited with {proc.returncode}: "
                f"{(proc.stdout + proc.stderr).strip()[-800:]}"
            )
        return proc.stdout

    # interface ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def start(self) -> None:
        """Start, preload all routes, return when they are loaded (session still held back)."""

    def enable(self) -> None:  # noqa: B027 - most senders are gated by the receiver alone
        """Let the session come up from this side (after the receiver's ``no neighbor shutdown``)."""

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc is not None and self.proc.poll() is None else []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=10)

    def log_tail(self) -> str:
        return _tail(self.log_path)

    def notes(self) -> dict[str, Any]:
        """Sender-specific facts worth keeping in the JSON output."""
        return {}

    @classmethod
    def version(cls) -> str:
        return ""


class BgpsvcSender(Sender):
    name = "bgpsvc"

    def start(self) -> None:
        rf = self.ctx.workdir / "routes.txt"
        rf.write_text("\n".join(self.ctx.nets) + "\n")
        cfg = self.ctx.workdir / "bgpsvc.yaml"
        peer = {"address": RX_ADDR, "peer_as": RX_AS, "connect_retry_time": 1, **self.ctx.bgpsvc_peer}
        config = {
            "local_as": TX_AS,
            "router_id": TX_ADDR,
            "listen": False,
            "control": False,
            "log_level": "info",
            "drain_time": 0,
            "routes_file": str(rf),
            "peers": [peer],
        }
        cfg.write_text(json.dumps(config, indent=2))  # JSON is YAML
        prof = self.ctx.bgpsvc_profile
        profile = ["-m", "cProfile", "-o", str(prof)] if prof else []
        # This checkout's bgpsvc, whichever copy the venv has installed (a worktree shares one venv).
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._popen([PYTHON, *profile, "-m", "bgpsvc.app.cli", "run", "-c", str(cfg)], env=env)
        pattern = re.compile(rf"bgpsvc AS {TX_AS} .*: 1 peers, (\d+) routes")

        def loaded() -> bool:
            m = pattern.search(self.log_path.read_text(errors="replace"))
            if m and int(m.group(1)) != self.ctx.n:
                raise netlab.AbortWait(f"bgpsvc loaded {m.group(1)} routes, expected {self.ctx.n}")
            return m is not None

        self._wait(loaded, "bgpsvc to load its routes file")

    @classmethod
    def version(cls) -> str:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return f"bgpsvc {rev} (Python {sys.version.split()[0]})"


class GobgpSender(Sender):
    name = "gobgp"

    def start(self) -> None:
        self.sock = self.ctx.workdir / "gobgp.sock"
        conf = self.ctx.workdir / "gobgpd.toml"
        conf.write_text(f'[global.config]\n  as = {TX_AS}\n  router-id = "{TX_ADDR}"\n  port = 179\n')
        self._popen(
            [
                "gobgpd",
                "-f",
                str(conf),
                "-t",
                "toml",
                "--api-hosts",
                f"unix://{self.sock}",
                "--pprof-disable",
                "-p",
                "-l",
                "info",
            ]
        )
        self._wait(lambda: self._cli("global", check=False), "gobgpd API", timeout=30)
        mrt = self.ctx.workdir / "routes.mrt"
        nets = self.ctx.nets + [self.ctx.nets[0]] * GOBGP_PAD
        mrt.write_bytes(mrt_table_dump_v2(nets, TX_ADDR, TX_AS, TX_ADDR))
        # `gobgp mrt inject` (3.10) sends one AddPathStream message per record and exits without
        # CloseAndRecv, so whatever gRPC still buffers at exit (hundreds of records) is lost. The file
        # therefore ends with GOBGP_PAD copies of its first record (same prefix and path: no extra route),
        # which absorb the loss; the RIB must then hold exactly N. Retried a few times if it does not.
        n = self.ctx.n
        self.inject_attempts = 0
        loaded = 0
        while loaded != n:
            if self.inject_attempts >= 5:
                raise SenderError(f"gobgp: {loaded} of {n} routes after {self.inject_attempts} injects")
            self.inject_attempts += 1
            self._cli("mrt", "inject", "global", str(mrt), timeout=self.ctx.preload_timeout)
            loaded = self._settled_count()
        # The padding does not change the count; give gobgpd a moment to apply whatever of it arrived,
        # so none of it is processed during the timed transfer.
        time.sleep(1.0)

    def _rib_count(self) -> int:
        out = self._cli("global", "rib", "summary", "-a", "ipv4")
        m = re.search(r"Destination:\s*(\d+),\s*Path:\s*(\d+)", out)
        if not m:
            raise SenderError(f"gobgp: cannot parse rib summary: {out!r}")
        return int(m.group(1))

    def _settled_count(self) -> int:
        """The RIB size once it stops growing (gobgpd may still be applying streamed paths)."""
        last = -1
        for _ in range(100):
            self._check_alive()
            count = self._rib_count()
            if count == last:
                return count
            last = count
            time.sleep(0.2)
        return last

    def _cli(self, *args: str, check: bool = True, timeout: float = 30) -> str:
        argv = ["gobgp", "--target", f"unix://{self.sock}", *args]
        if not check:
            return self.ctx.ns.run(argv, check=False, timeout=timeout).stdout
        return self._run(argv, timeout=timeout)

    def enable(self) -> None:
        self._cli("neighbor", "add", RX_ADDR, "as", str(RX_AS))

    def notes(self) -> dict[str, Any]:
        return {"mrt_inject_attempts": self.inject_attempts, "mrt_pad_records": GOBGP_PAD}

    @classmethod
    def version(cls) -> str:
        return subprocess.run(
            ["gobgpd", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()


class BirdSender(Sender):
    name = "bird"

    def start(self) -> None:
        self.sock = self.ctx.workdir / "bird.ctl"
        conf = self.ctx.workdir / "bird.conf"
        routes = "".join(f"  route {p} blackhole;\n" for p in self.ctx.nets)
        conf.write_text(
            f"router id {TX_ADDR};\n"
            "protocol device { }\n"  # interface scan only (BGP needs to see the directly connected net)
            f"protocol static bench_routes {{\n  ipv4;\n{routes}}}\n"
            "protocol bgp bench_peer {\n  disabled;\n"
            f"  local {TX_ADDR} as {TX_AS};\n  neighbor {RX_ADDR} as {RX_AS};\n"
            "  connect delay time 1;\n"
            "  ipv4 { import none; export all; };\n}\n"
            # no "protocol kernel": nothing is ever installed in the namespace's FIB
        )
        self._popen(
            ["bird", "-f", "-c", str(conf), "-s", str(self.sock), "-P", str(self.ctx.workdir / "bird.pid")]
        )

        def loaded() -> bool:
            out = self._birdc("show route count", check=False)
            m = re.search(r"(\d+) of (\d+) routes", out)
            return bool(m) and int(m.group(1)) == self.ctx.n  # type: ignore[union-attr]

        self._wait(loaded, f"bird to hold {self.ctx.n} static routes")

    def _birdc(self, cmd: str, check: bool = True) -> str:
        argv = ["birdc", "-s", str(self.sock), *cmd.split()]
        if not check:
            return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False).stdout
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if proc.returncode != 0:
            raise SenderError(f"bird: birdc {cmd}: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def enable(self) -> None:
        out = self._birdc("enable bench_peer")
        if "enabled" not in out:
            raise SenderError(f"bird: enable bench_peer: {out.strip()}")

    @classmethod
    def version(cls) -> str:
        proc = subprocess.run(["bird", "--version"], capture_output=True, text=True, check=False)
        return (proc.stdout + proc.stderr).strip()


class ExabgpSender(Sender):
    name = "exabgp"

    def start(self) -> None:
        conf = self.ctx.workdir / "exabgp.conf"
        routes = "".join(f"    route {p} next-hop {TX_ADDR};\n" for p in self.ctx.nets)
        conf.write_text(
            f"neighbor {RX_ADDR} {{\n  router-id {TX_ADDR};\n  local-address {TX_ADDR};\n"
            f"  local-as {TX_AS};\n  peer-as {RX_AS};\n  family {{\n    ipv4 unicast;\n  }}\n"
            f"  static {{\n{routes}  }}\n}}\n"
        )
        self.ctx.workdir.chmod(0o755)
        env = dict(os.environ)
        env.update(
            {
                "exabgp_api_cli": "false",
                "exabgp_daemon_daemonize": "false",
                "exabgp_daemon_drop": "false",
                "exabgp_daemon_pid": "",
                "exabgp_log_destination": "stdout",
                "exabgp_log_level": "INFO",
                "exabgp_tcp_bind": "",
            }
        )
        self._popen([EXABGP, "server", str(conf)], env=env)
        # Logged once the whole configuration (every route) is parsed; the receiver's neighbor is shut
        # down, so the connection attempts that follow fail until it is enabled.
        pattern = re.compile(r"loaded new configuration successfully")

        def loaded() -> bool:
            return bool(pattern.search(self.log_path.read_text(errors="replace")))

        self._wait(loaded, "exabgp to load its configuration")

    @classmethod
    def version(cls) -> str:
        out = subprocess.run([EXABGP, "version"], capture_output=True, text=True, check=False).stdout
        m = re.search(r"ExaBGP\s*:\s*(\S+)", out)
        return f"ExaBGP {m.group(1) if m else '?'} (Python {sys.version.split()[0]})"


class FrrSender(Sender):
    name = "frr"

    def __init__(self, ctx: RunContext) -> None:
        super().__init__(ctx)
        self.frr = netlab.Frr(ctx.ns, "", "tx", daemons=("bgpd",), log_level="informational")
        self.vty: Vty | None = None

    def start(self) -> None:
        base = (
            f"router bgp {TX_AS}\n bgp router-id {TX_ADDR}\n no bgp ebgp-requires-policy\n"
            f" no bgp network import-check\n coalesce-time 0\n neighbor {RX_ADDR} remote-as {RX_AS}\n"
            f" neighbor {RX_ADDR} timers connect 1\n"
        )
        self.frr.config = base
        self.ctx.lab.routers.append(self.frr)
        self.frr.start()
        # Applied with vtysh -f: about 4 s for 100k lines on a quiet machine, several times that on a
        # loaded one, so the limit grows with N (within --preload-timeout).
        nets = "".join(f"  network {p}\n" for p in self.ctx.nets)
        limit = min(self.ctx.preload_timeout, max(30.0, self.ctx.n / 2000))
        self.frr.configure(f"router bgp {TX_AS}\n address-family ipv4 unicast\n{nets}", timeout=limit)
        assert self.frr.workdir is not None
        vty = self.vty = Vty(self.frr.workdir / "bgpd.vty")

        def loaded() -> bool:
            if not self.frr.running:
                raise netlab.AbortWait("frr sender bgpd exited")
            summary = vty.json("show bgp ipv4 unicast summary json")
            return int(summary.get("tableVersion", 0)) >= self.ctx.n

        self._wait(loaded, f"frr sender to originate {self.ctx.n} networks")

    def pids(self) -> list[int]:
        return [p.pid for p in self.frr.procs.values() if p.poll() is None]

    def alive(self) -> bool:
        return self.frr.running

    def stop(self) -> None:
        if self.vty is not None:
            self.vty.close()
        self.frr.stop()

    def log_tail(self) -> str:
        try:
            return self.frr.diagnostics(commands=())
        except Exception as exc:
            return f"(no diagnostics: {exc})"

    @classmethod
    def version(cls) -> str:
        return f"FRR {netlab.frr_version()}"


SENDERS: dict[str, type[Sender]] = {
    cls.name: cls for cls in (BgpsvcSender, GobgpSender, BirdSender, ExabgpSender, FrrSender)
}


# --------------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------------


@dataclass
class Result:
    sender: str
    n: int
    ok: bool
    time_s: float | None = None
    cpu_s: float | None = None
    #: The sender's CPU over its whole life up to the end of the transfer (start-up and preload too).
    cpu_total_s: float | None = None
    peak_rss_mb: float | None = None
    preload_s: float | None = None
    poll_median_ms: float | None = None
    poll_max_ms: float | None = None
    time99_s: float | None = None
    rx_cpu_s: float | None = None
    other_cpu_s: float | None = None
    loadavg_1m: float | None = None
    polls: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    log_tail: str | None = None
    repeat: int = 0


RX_CONFIG = f"""router bgp {RX_AS}
 bgp router-id {RX_ADDR}
 no bgp ebgp-requires-policy
 neighbor {TX_ADDR} remote-as {TX_AS}
 neighbor {TX_ADDR} timers connect 1
 neighbor {TX_ADDR} shutdown
"""


def _peer(vty: Vty) -> dict[str, Any]:
    data = vty.json("show bgp ipv4 unicast summary json")
    peer: dict[str, Any] = data.get("peers", {}).get(TX_ADDR, {})
    return peer


def run_once(name: str, n: int, args: argparse.Namespace, repeat: int, log: TextIO) -> Result:
    """One independent run: fresh namespaces, fresh receiver, fresh sender."""
    lab = netlab.Lab()
    workdir = Path(tempfile.mkdtemp(prefix=f"bgpsvc-bench-{name}-"))
    workdir.chmod(0o755)
    sender: Sender | None = None
    res = Result(name, n, ok=False, repeat=repeat)
    rx_frr: netlab.Frr | None = None
    vty: Vty | None = None
    try:
        rx = lab.netns("rx")
        tx = lab.netns("tx")
        lab.veth(rx, tx, f"{RX_ADDR}/24", f"{TX_ADDR}/24")
        rx_frr = netlab.Frr(rx, RX_CONFIG, "rx", daemons=("bgpd",), log_level="informational")
        lab.routers.append(rx_frr)
        rx_frr.start()
        assert rx_frr.workdir is not None
        vty = Vty(rx_frr.workdir / "bgpd.vty")
        ctx = RunContext(
            tx,
            lab,
            workdir,
            prefixes(n),
            args.preload_timeout,
            bgpsvc_peer(args.bgpsvc_peer),
            args.bgpsvc_profile and Path(args.bgpsvc_profile) / f"bgpsvc-{n}-{repeat}.prof",
        )
        sender = SENDERS[name](ctx)
        res.loadavg_1m = os.getloadavg()[0]
        t0 = time.monotonic()
        sender.start()
        res.preload_s = time.monotonic() - t0
        peer = _peer(vty)
        if peer.get("state") == "Established" or peer.get("pfxRcd", 0) != 0:
            raise SenderError(f"receiver not pristine before enabling: {peer}")
        rx_frr.vtysh("configure terminal", f"router bgp {RX_AS}", f"no neighbor {TX_ADDR} shutdown")
        sender.enable()
        measure(vty, sender, rx_frr.pid("bgpd"), args, res)
        res.notes = sender.notes()
        res.ok = True
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
        if args.verbose:
            traceback.print_exc(file=log)
        tails = []
        if sender is not None:
            tails.append(f"--- {name} log tail ---\n{sender.log_tail()}")
        if rx_frr is not None:
            with contextlib.suppress(Exception):
                tails.append(f"--- receiver ---\n{rx_frr.diagnostics(commands=('show bgp summary',))}")
        res.log_tail = "\n".join(tails)
    finally:
        if vty is not None:
            vty.close()
        # Receiver first: the session drops, so no sender spends its exit withdrawing routes.
        for stop in ([rx_frr.stop] if rx_frr else []) + ([sender.stop] if sender else []):
            try:
                stop()
            except Exception as exc:
                print(f"warning: stopping: {exc}", file=log)
        try:
            lab.cleanup()
        except Exception as exc:
            print(f"warning: {exc}", file=log)
        if args.keep:
            print(f"kept {workdir}", file=log)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return res


def measure(vty: Vty, sender: Sender, rx_pid: int, args: argparse.Namespace, res: Result) -> None:
    """Poll the receiver until it holds all N; fill in time, CPU and RSS (see the module docstring)."""
    n = res.n
    deadline_up = time.monotonic() + args.establish_timeout
    pids = sender.pids()
    cpu_before = cpu_seconds(pids)
    rx_before = cpu_seconds([rx_pid])
    host_before = host_busy_seconds()
    t_est: float | None = None
    cpu_est = rx_est = host_est = 0.0
    stamps: list[float] = []
    deadline = deadline_up
    while True:
        t_poll = time.monotonic()
        peer = _peer(vty)
        t_reply = time.monotonic()
        cpu_now = cpu_seconds(pids)
        rx_now = cpu_seconds([rx_pid])
        host_now = host_busy_seconds()
        state = peer.get("state")
        if args.trace:
            print(
                f"  poll {t_reply:.3f} {state} pfxRcd={peer.get('pfxRcd')} msgRcvd={peer.get('msgRcvd')} "
                f"cpu={cpu_now:.2f}",
                file=sys.stderr,
            )
        if t_est is None:
            if state == "Established":
                t_est, cpu_est, rx_est, host_est = t_reply, cpu_before, rx_before, host_before
                deadline = t_est + args.transfer_timeout
                stamps.append(t_reply)
            else:
                cpu_before, rx_before, host_before = cpu_now, rx_now, host_now
        else:
            stamps.append(t_reply)
            if state != "Established":
                raise SenderError(f"session dropped during transfer at pfxRcd={peer.get('pfxRcd')}: {peer}")
        if t_est is not None and res.time99_s is None and int(peer.get("pfxRcd", 0)) >= 0.99 * n:
            res.time99_s = t_reply - t_est
        if t_est is not None and int(peer.get("pfxRcd", 0)) >= n:
            res.time_s = t_reply - t_est
            res.cpu_s = cpu_now - cpu_est
            res.cpu_total_s = cpu_now
            res.rx_cpu_s = rx_now - rx_est
            res.other_cpu_s = (host_now - host_est) - res.cpu_s - res.rx_cpu_s
            res.peak_rss_mb = peak_rss_mb(pids)
            break
        if not sender.alive():
            raise SenderError(f"{sender.name} exited (state {state}, pfxRcd {peer.get('pfxRcd')})")
        if time.monotonic() > deadline:
            phase = "reach Established" if t_est is None else f"deliver {n} routes"
            raise SenderError(f"timed out waiting to {phase}: {peer}")
        time.sleep(max(0.0, args.poll - (time.monotonic() - t_poll)))
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    res.polls = len(stamps)
    if gaps:
        res.poll_median_ms = statistics.median(gaps) * 1000
        res.poll_max_ms = max(gaps) * 1000
    # Sanity: the first and last prefix are in the receiver's table.
    nets = prefixes(n)
    for p in (nets[0], nets[-1]):
        if not vty.json(f"show bgp ipv4 unicast {p} json").get("paths"):
            raise SenderError(f"receiver holds {n} prefixes but not {p}")


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def bgpsvc_peer(items: Sequence[str]) -> dict[str, Any]:
    """``--bgpsvc-peer KEY=VALUE`` settings, values parsed as YAML (``false``, ``30``, ``[ipv4-unicast]``)."""
    import yaml  # noqa: PLC0415

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--bgpsvc-peer: expected KEY=VALUE, got {item!r}")
        out[key] = yaml.safe_load(value)
    return out


def pick(results: list[Result]) -> Result:
    """The run with the median time among successful repeats (lower middle), else the last failure."""
    good = sorted((r for r in results if r.ok and r.time_s is not None), key=lambda r: r.time_s or 0.0)
    if not good:
        return results[-1]
    return good[(len(good) - 1) // 2]


def ratio_text(t_sender: float, t_bgpsvc: float) -> str:
    if t_bgpsvc <= 0 or t_sender <= 0:
        return "n/a (below poll resolution)"
    r = t_sender / t_bgpsvc
    return f"bgpsvc is {r:.2f}x faster" if r >= 1 else f"bgpsvc is {1 / r:.2f}x slower"


def targets(chosen: dict[str, Result], n: int) -> list[dict[str, Any]]:
    """The issue's two targets, for one size."""
    out: list[dict[str, Any]] = []
    b = chosen.get("bgpsvc")
    ok = {k: r for k, r in chosen.items() if r.ok and r.time_s is not None}
    if not b or not b.ok or b.time_s is None:
        return [{"target": "bgpsvc ran", "n": n, "verdict": "MISS", "detail": "bgpsvc run failed"}]
    if b.time_s <= 0 or any(r.time_s is not None and r.time_s <= 0 for r in ok.values()):
        detail = "a transfer finished within one poll interval; use a larger N"
        return [{"target": "both targets", "n": n, "verdict": "n/a", "detail": detail}]
    fastest = min(ok.values(), key=lambda r: r.time_s or 0.0)
    factor = b.time_s / fastest.time_s if fastest.time_s else 1.0
    out.append(
        {
            "target": "bgpsvc within 1.1x of the fastest sender",
            "n": n,
            "verdict": "PASS" if factor <= 1.1 else "MISS",
            "detail": f"bgpsvc {b.time_s:.3f} s, fastest {fastest.sender} {fastest.time_s:.3f} s: "
            f"{factor:.2f}x" + (f" (only {len(ok) - 1} other senders ran)" if len(ok) < len(chosen) else ""),
        }
    )
    out += issue14_targets(chosen, n)
    e = chosen.get("exabgp")
    if e is None:
        out.append(
            {
                "target": "bgpsvc >= 5x faster than ExaBGP",
                "n": n,
                "verdict": "n/a",
                "detail": "exabgp not run",
            }
        )
    elif not e.ok or e.time_s is None:
        out.append(
            {
                "target": "bgpsvc >= 5x faster than ExaBGP",
                "n": n,
                "verdict": "n/a",
                "detail": f"exabgp run failed: {e.error}",
            }
        )
    else:
        speedup = e.time_s / b.time_s if b.time_s else float("inf")
        out.append(
            {
                "target": "bgpsvc >= 5x faster than ExaBGP",
                "n": n,
                "verdict": "PASS" if speedup >= 5 else "MISS",
                "detail": f"exabgp {e.time_s:.3f} s / bgpsvc {b.time_s:.3f} s = {speedup:.2f}x",
            }
        )
    return out


#: Issue 14's memory bounds for the sender's peak RSS (MB = 10^6 bytes), by N.
RSS_BOUND_MB = {300_000: 90.0, 1_000_000: 260.0}


def issue14_targets(chosen: dict[str, Result], n: int) -> list[dict[str, Any]]:
    """Issue 14: push <= 1.0x FRR's; transfer CPU <= 2x BIRD's (300k, 1M); peak RSS bounds."""
    b = chosen["bgpsvc"]
    out: list[dict[str, Any]] = []

    def verdict(target: str, ok: bool, detail: str) -> None:
        out.append({"target": target, "n": n, "verdict": "PASS" if ok else "MISS", "detail": detail})

    frr, bird = chosen.get("frr"), chosen.get("bird")
    if frr is not None and frr.ok and frr.time_s and b.time_s is not None:
        f = b.time_s / frr.time_s
        verdict(
            "push <= 1.0x FRR's", f <= 1.0, f"bgpsvc {b.time_s:.3f} s / frr {frr.time_s:.3f} s = {f:.2f}x"
        )
    if n >= 300_000 and bird is not None and bird.ok and bird.cpu_s and b.cpu_s is not None:
        f = b.cpu_s / bird.cpu_s
        verdict("CPU <= 2x BIRD's", f <= 2.0, f"bgpsvc {b.cpu_s:.2f} s / bird {bird.cpu_s:.2f} s = {f:.2f}x")
        if b.cpu_total_s is not None and bird.cpu_total_s:
            f = b.cpu_total_s / bird.cpu_total_s
            verdict(
                "CPU incl. start-up and preload <= 2x BIRD's",
                f <= 2.0,
                f"bgpsvc {b.cpu_total_s:.2f} s / bird {bird.cpu_total_s:.2f} s = {f:.2f}x",
            )
    bound = RSS_BOUND_MB.get(n)
    if bound is not None and b.peak_rss_mb is not None:
        verdict(f"peak RSS <= {bound:.0f} MB", b.peak_rss_mb <= bound, f"bgpsvc {b.peak_rss_mb:.1f} MB")
    return out


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(
    n: int, chosen: dict[str, Result], runs: dict[str, list[Result]], repeat: int, out: TextIO
) -> None:
    b = chosen.get("bgpsvc")
    tb = b.time_s if b is not None and b.ok else None
    print(f"\nN = {n} IPv4 /32 routes (median of {repeat} run{'s' if repeat > 1 else ''})", file=out)
    header = (
        f"{'sender':<8} {'time (s)':>9} {'99% (s)':>8} {'CPU (s)':>8} {'CPU all':>8} {'peak RSS (MB)':>14} "
        f"{'preload (s)':>12} {'rx CPU (s)':>11} {'other CPU (s)':>14}  bgpsvc ratio"
    )
    print(header, file=out)
    print("-" * (len(header) + 12), file=out)
    polls: list[float] = []
    pmax: list[float] = []
    for name, r in chosen.items():
        if not r.ok:
            print(f"{name:<8} FAILED: {r.error}", file=out)
            continue
        if name == "bgpsvc":
            ratio = "-"
        elif tb is not None and r.time_s is not None:
            ratio = ratio_text(r.time_s, tb)
        else:
            ratio = "n/a (bgpsvc failed)"
        print(
            f"{name:<8} {fmt(r.time_s, '9.3f')} {fmt(r.time99_s, '8.3f')} {fmt(r.cpu_s, '8.2f')} "
            f"{fmt(r.cpu_total_s, '8.2f')} "
            f"{fmt(r.peak_rss_mb, '14.1f')} "
            f"{fmt(r.preload_s, '12.1f')} {fmt(r.rx_cpu_s, '11.2f')} {fmt(r.other_cpu_s, '14.2f')}  "
            f"{ratio}",
            file=out,
        )
        if r.poll_median_ms is not None:
            polls.append(r.poll_median_ms)
        if r.poll_max_ms is not None:
            pmax.append(r.poll_max_ms)
    if polls:
        print(
            f"poll resolution during transfers: median interval {statistics.median(polls):.1f} ms, "
            f"max {max(pmax):.1f} ms",
            file=out,
        )
    for name, rs in runs.items():
        failed = [r for r in rs if not r.ok]
        if failed and chosen[name].ok:
            print(f"note: {name}: {len(failed)} of {len(rs)} runs failed, first: {failed[0].error}", file=out)
    for name, r in chosen.items():
        if not r.ok and r.log_tail:
            print(f"\n[{name} N={n} failed] {r.error}\n{r.log_tail}", file=out)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated route counts")
    ap.add_argument("--senders", default=",".join(ALL_SENDERS), help=f"subset of {','.join(ALL_SENDERS)}")
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per (size, sender), interleaved; the median-time run is reported",
    )
    ap.add_argument("--poll", type=float, default=0.01, help="receiver poll interval in seconds")
    ap.add_argument("--preload-timeout", type=float, default=300)
    ap.add_argument("--establish-timeout", type=float, default=60)
    ap.add_argument("--transfer-timeout", type=float, default=600)
    ap.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    ap.add_argument("--json-out", metavar="FILE", help="also write the JSON document to FILE")
    ap.add_argument("--keep", action="store_true", help="keep the senders' work dirs")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--trace", action="store_true", help="print every receiver poll to stderr")
    ap.add_argument(
        "--bgpsvc-peer",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra bgpsvc peer setting (YAML value), e.g. extended_message=false; repeatable",
    )
    ap.add_argument(
        "--bgpsvc-profile",
        metavar="DIR",
        help="run bgpsvc under cProfile, writing DIR/bgpsvc-<N>-<repeat>.prof",
    )
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    names = [s.strip() for s in args.senders.split(",") if s.strip()]
    unknown = [s for s in names if s not in SENDERS]
    if unknown:
        ap.error(f"unknown senders {unknown}; choose from {','.join(ALL_SENDERS)}")
    problems = netlab.frr_available()
    if problems:
        print("cannot run: " + "; ".join(problems), file=sys.stderr)
        return 2
    netlab.sweep_stale_namespaces()
    log = sys.stderr
    versions: dict[str, str] = {"receiver": f"FRR {netlab.frr_version()} (bgpd only)"}
    for name in names:
        try:
            versions[name] = SENDERS[name].version()
        except Exception as exc:
            versions[name] = f"unknown ({exc})"
    runs: dict[int, dict[str, list[Result]]] = {n: {name: [] for name in names} for n in sizes}
    t_start = time.monotonic()
    load_start = os.getloadavg()[0]
    for n in sizes:
        for rep in range(args.repeat):
            for name in names:
                t = time.monotonic()
                print(
                    f"[{time.monotonic() - t_start:7.1f}s] N={n} {name} run {rep + 1}/{args.repeat} ...",
                    end="",
                    file=log,
                    flush=True,
                )
                r = run_once(name, n, args, rep, log)
                runs[n][name].append(r)
                what = f"{r.time_s:.3f} s, CPU {r.cpu_s:.2f} s" if r.ok else f"FAILED: {r.error}"
                print(f" {what} ({time.monotonic() - t:.1f} s wall)", file=log, flush=True)
    chosen = {n: {name: pick(rs) for name, rs in by.items()} for n, by in runs.items()}
    verdicts = {n: targets(chosen[n], n) for n in sizes}
    headline = 100_000 if 100_000 in sizes else max(sizes)
    doc = {
        "versions": versions,
        "poll_interval_s": args.poll,
        "repeat": args.repeat,
        "statistic": "median-time run",
        "cpu_count": os.cpu_count(),
        "results": {str(n): {name: asdict(r) for name, r in by.items()} for n, by in chosen.items()},
        "all_runs": {
            str(n): {name: [asdict(r) for r in rs] for name, rs in by.items()} for n, by in runs.items()
        },
        "targets": {str(n): v for n, v in verdicts.items()},
        "headline_n": headline,
        "wall_s": time.monotonic() - t_start,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg()[0],
    }
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(doc, indent=2) + "\n")
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        print()
        return 0
    out = sys.stdout
    print("\nversions: " + "; ".join(f"{k}: {v}" for k, v in versions.items()), file=out)
    legend = (
        "time = receiver Established -> receiver pfxRcd >= N (polled every "
        f"{args.poll * 1000:.0f} ms over bgpd's vty socket); 99% = same, to pfxRcd >= 0.99 N; "
        "CPU = sender utime+stime over the same span; peak RSS = sender VmHWM (includes preload); "
        "rx CPU = receiver bgpd; other CPU = rest of the host (poller, "
        f"softirq, other tenants); {os.cpu_count()} CPUs shared by all; "
        f"load average at start {doc['loadavg_start']:.2f}, end {os.getloadavg()[0]:.2f}"
    )
    print(textwrap.fill(legend, 110), file=out)
    for n in sizes:
        print_table(n, chosen[n], runs[n], args.repeat, out)
    print(
        f"\ntargets (issue 2's for N=100000, evaluated at N={headline}; issue 14's at every size):",
        file=out,
    )
    for n in sizes:
        for v in verdicts[n]:
            mark = (
                ""
                if n == headline or "x FRR" in v["target"] or "BIRD" in v["target"] or "RSS" in v["target"]
                else " (informational)"
            )
            print(f"  N={n}: {v['target']}: {v['verdict']}{mark} - {v['detail']}", file=out)
    print(f"\ntotal wall time {time.monotonic() - t_start:.0f} s", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
