"""Real FRR routers (zebra, bgpd, bfdd ...) in a lab network namespace, isolated from the host's FRR."""

from __future__ import annotations

import contextlib
import json as jsonlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .procs import (
    DEFAULT_CMD_TIMEOUT,
    FRR_BIN_DIR,
    IP,
    NS_PREFIX,
    STOP_TIMEOUT,
    TC,
    VTYSH,
    CommandError,
    DaemonDied,
    FrrError,
    _end_process,
    _run,
    wait_until,
)

if TYPE_CHECKING:
    from .netlab import Netns

# --------------------------------------------------------------------------------------------------
# environment checks
# --------------------------------------------------------------------------------------------------


def frr_available() -> list[str]:
    """Return a list of reasons the lab cannot run here (empty if it can)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("not running as root (network namespaces and FRR need CAP_NET_ADMIN)")
    for tool in (IP, TC):
        if not os.access(tool, os.X_OK):
            problems.append(f"{tool} missing (iproute2)")
    for daemon in ("zebra", "bgpd"):
        path = FRR_BIN_DIR / daemon
        if not os.access(path, os.X_OK):
            problems.append(f"{path} missing (install FRR, e.g. Debian package 'frr')")
    if not os.access(VTYSH, os.X_OK):
        problems.append(f"{VTYSH} missing (FRR vtysh)")
    return problems


def require_root_and_frr() -> None:
    """Skip the calling test (``pytest.fail`` when ``$CI == "true"``) unless root and FRR are available."""
    import pytest  # noqa: PLC0415 - keep the module importable outside pytest

    problems = frr_available()
    if not problems:
        return
    msg = "integration lab unavailable: " + "; ".join(problems)
    if os.environ.get("CI") == "true":
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


_frr_version_cache: str | None = None


def frr_version() -> str:
    """Installed FRR version, e.g. ``"8.4.4"`` (from ``bgpd --version``)."""
    global _frr_version_cache  # noqa: PLW0603
    if _frr_version_cache is None:
        out = _run([str(FRR_BIN_DIR / "bgpd"), "--version"]).stdout
        m = re.search(r"version\s+(\S+)", out)
        if not m:
            raise FrrError(f"cannot parse FRR version from: {out!r}")
        _frr_version_cache = m.group(1)
    return _frr_version_cache


# --------------------------------------------------------------------------------------------------
# FRR
# --------------------------------------------------------------------------------------------------


def _traversable_by_others(path: Path) -> bool:
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _frr_identity() -> tuple[str, str]:
    try:
        pw = pwd.getpwnam("frr")
    except KeyError:
        return "root", "root"
    import grp  # noqa: PLC0415

    return "frr", grp.getgrgid(pw.pw_gid).gr_name


class Frr:
    """One FRR router (zebra + bgpd by default) running inside a :class:`Netns`.

    Isolation: all state lives in a private work dir ``<tmp>/bgpsvc-<pid>-frr-<name>-XXXX/`` (owned by
    the ``frr`` user the daemons drop privileges to): ``<daemon>.conf`` startup configs,
    ``<daemon>.pid``, ``<daemon>.vty`` sockets (``--vty_socket``), ``zserv.api`` (``-z``, zebra and its
    clients), ``<daemon>.log``. The TCP vty is disabled (``-P 0``); BGP listens on :179 inside the
    namespace only. Defaults profile is forced with ``-F traditional``.

    ``config`` is applied after the daemons are up with ``vtysh -f`` (which dispatches each line to the
    right daemon, like an integrated ``frr.conf``). Add ``"staticd"`` to ``daemons`` for ``ip route``
    statements (lines for daemons that are not running are silently ignored by vtysh). With
    ``daemons=("bgpd",)`` (no zebra), bgpd runs with ``-Z`` (no zebra, hence no kernel routes and no
    interface knowledge: configure ``bgp router-id`` or the OPEN carries 0.0.0.0 and is refused).
    """

    def __init__(
        self,
        ns: Netns,
        config: str,
        name: str,
        *,
        daemons: Sequence[str] = ("zebra", "bgpd"),
        log_level: str = "debugging",
        keep_workdir: bool | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"bad FRR instance name {name!r}")
        self.ns = ns
        self.config = config
        self.name = name
        self.daemons = tuple(daemons)
        if "zebra" in self.daemons:
            self.daemons = ("zebra", *(d for d in self.daemons if d != "zebra"))
        self.log_level = log_level
        self.keep_workdir = bool(os.environ.get("NETLAB_KEEP")) if keep_workdir is None else keep_workdir
        self.workdir: Path | None = None
        self.procs: dict[str, subprocess.Popen[Any]] = {}
        self.timings: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Frr({self.name!r} in {self.ns.name!r}, running={self.running})"

    # paths -------------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        if self.workdir is None:
            raise FrrError(f"{self.name}: not started")
        return self.workdir / name

    @property
    def zserv_path(self) -> Path:
        return self._path("zserv.api")

    def log_path(self, daemon: str) -> Path:
        return self._path(f"{daemon}.log")

    @property
    def running(self) -> bool:
        return bool(self.procs) and all(p.poll() is None for p in self.procs.values())

    def pid(self, daemon: str) -> int:
        return self.procs[daemon].pid

    # lifecycle ---------------------------------------------------------------------------------

    def _make_workdir(self) -> Path:
        base = Path(os.environ.get("NETLAB_TMPDIR") or tempfile.gettempdir())
        user, group = _frr_identity()
        if user != "root" and not _traversable_by_others(base):
            raise FrrError(f"{base} is not traversable by user {user}; set NETLAB_TMPDIR (e.g. /tmp)")
        workdir = Path(tempfile.mkdtemp(prefix=f"{NS_PREFIX}-{os.getpid()}-frr-{self.name}-", dir=base))
        if len(str(workdir / "staticd.vty")) > 100:
            raise FrrError(f"{workdir} too long for unix socket paths; set NETLAB_TMPDIR")
        shutil.chown(workdir, user, group)
        workdir.chmod(0o750)
        return workdir

    def _daemon_argv(self, daemon: str) -> list[str]:
        user, group = _frr_identity()
        conf = self._path(f"{daemon}.conf")
        conf.write_text(f"frr version {frr_version()}\nfrr defaults traditional\nhostname {self.name}\n!\n")
        shutil.chown(conf, user, group)
        argv = [
            str(FRR_BIN_DIR / daemon),
            "-u", user, "-g", group,
            "-F", "traditional",
            "-f", str(conf),
            "-i", str(self._path(f"{daemon}.pid")),
            "--vty_socket", str(self.workdir),
            "-P", "0",
            "--log", f"file:{self.log_path(daemon)}",
            "--log-level", self.log_level,
        ]  # fmt: skip
        if "zebra" in self.daemons:
            argv += ["-z", str(self.zserv_path)]
        elif daemon == "bgpd":
            argv += ["-Z"]
        return argv

    def start(self, timeout: float = 30) -> None:
        """Start the daemons (zebra first), wait until each answers vtysh, then apply ``config``."""
        if self.procs:
            raise FrrError(f"{self.name}: already started")
        t0 = time.monotonic()
        self.ns.create()
        self.workdir = self._make_workdir()
        (self.workdir / "vtysh.conf").write_text("")
        self.ns._frrs.append(self)
        try:
            for daemon in self.daemons:
                argv = self._daemon_argv(daemon)
                with open(self._path(f"{daemon}.out"), "wb") as out:
                    self.procs[daemon] = subprocess.Popen(
                        self.ns.exec_argv(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=out
                    )
                self._wait_daemon(daemon, timeout)
            self.timings["daemons_up"] = time.monotonic() - t0
            if "zebra" in self.daemons and "bgpd" in self.daemons:
                wait_until(
                    lambda: self._zebra_has_client("bgp"), timeout=timeout, what=f"{self.name}: bgpd->zebra"
                )
            self.configure(self.config)
            self.timings["started"] = time.monotonic() - t0
        except BaseException:
            with contextlib.suppress(Exception):
                diag = self.diagnostics(commands=())
                print(f"netlab: {self.name} failed to start\n{diag}", file=sys.stderr)
            self.stop()
            raise

    def _check_alive(self, daemon: str) -> None:
        proc = self.procs[daemon]
        if proc.poll() is not None:
            raise DaemonDied(
                f"{self.name}: {daemon} exited with {proc.returncode} during startup\n{self._tails(daemon)}"
            )

    def _wait_daemon(self, daemon: str, timeout: float) -> None:
        pidfile = self._path(f"{daemon}.pid")

        def ready() -> bool:
            self._check_alive(daemon)
            if not (self._path(f"{daemon}.vty").exists() and pidfile.exists()):
                return False
            if daemon == "zebra" and not self.zserv_path.exists():
                return False
            return self._vtysh_raw(["-d", daemon, "-c", "show version"], check=False).returncode == 0

        wait_until(ready, timeout=timeout, interval=0.05, what=f"{self.name}: {daemon} to answer vtysh")
        filepid = int(pidfile.read_text().strip() or 0)
        if filepid != self.procs[daemon].pid:
            raise FrrError(f"{self.name}: {daemon} pid file says {filepid}, started {self.procs[daemon].pid}")

    def _zebra_has_client(self, proto: str) -> bool:
        out = self._vtysh_raw(["-d", "zebra", "-c", "show zebra client summary"], check=False).stdout
        return any(line.split()[:1] == [proto] for line in out.splitlines())

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every daemon by PID (clients before zebra), wait, SIGKILL stragglers, remove work dir."""
        errors = []
        order = [d for d in reversed(self.daemons) if d in self.procs]
        for daemon in order:  # signal all first so they shut down in parallel
            proc = self.procs[daemon]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        for daemon in order:
            proc = self.procs[daemon]
            try:
                code = _end_process(proc, timeout)
            except Exception as exc:
                errors.append(f"{daemon} (pid {proc.pid}): {exc}")
                continue
            if code not in (0, -signal.SIGTERM, None):
                # Not an error for cleanup purposes, but worth knowing (e.g. a crash during the test).
                print(f"netlab: {self.name} {daemon} exited with {code}", file=sys.stderr)
        self.procs.clear()
        with contextlib.suppress(ValueError):
            self.ns._frrs.remove(self)
        if self.workdir is not None and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if errors:
            raise FrrError(f"{self.name}: could not stop: {'; '.join(errors)}")

    def kill(self, daemon: str, sig: int = signal.SIGKILL, timeout: float = STOP_TIMEOUT) -> int:
        """Send ``sig`` to one daemon (by its PID), wait for it to exit, return its exit code.

        For crash / graceful-restart tests; :meth:`stop` still cleans up the rest.
        """
        proc = self.procs[daemon]
        if proc.poll() is None:
            proc.send_signal(sig)
        return proc.wait(timeout=timeout)

    def restart(self) -> None:
        """Stop and start again with the same config (new work dir)."""
        self.stop()
        self.start()

    # vtysh -------------------------------------------------------------------------------------

    def _vtysh_raw(
        self, args: Sequence[str], check: bool = True, timeout: float = DEFAULT_CMD_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        if self.workdir is None:
            raise FrrError(f"{self.name}: not started")
        env = dict(os.environ, VTYSH_PAGER="cat", LANG="C")
        argv = [VTYSH, "--vty_socket", str(self.workdir), "--config_dir", str(self.workdir), *args]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, argv, proc.stdout, proc.stderr)
        return proc

    def vtysh(self, *commands: str, daemon: str | None = None) -> str:
        """Run vtysh commands against this instance (``-c`` each) and return stdout."""
        args: list[str] = []
        if daemon:
            args += ["-d", daemon]
        for c in commands:
            args += ["-c", c]
        return self._vtysh_raw(args).stdout

    def configure(self, config: str, timeout: float = DEFAULT_CMD_TIMEOUT) -> None:
        """Apply configuration text (``frr.conf`` syntax) with ``vtysh -f``; raise on any rejected line."""
        if not config.strip():
            return
        path = self._path(f"apply-{time.monotonic_ns()}.conf")
        path.write_text(config if config.endswith("\n") else config + "\n")
        try:
            self._vtysh_raw(["-f", str(path)], timeout=timeout)
        except CommandError as exc:
            raise FrrError(f"{self.name}: configuration rejected:\n{exc}") from None

    def json(self, command: str) -> Any:
        """``vtysh -c '<command> json'`` parsed."""
        if not command.rstrip().endswith(" json"):
            command = command.rstrip() + " json"
        out = self.vtysh(command)
        try:
            return jsonlib.loads(out)
        except ValueError:
            raise FrrError(f"{self.name}: {command!r} did not return JSON: {out[:500]!r}") from None

    def bgp_summary(self, family: str | None = None) -> dict[str, Any]:
        """``show bgp summary json``: ``{"ipv4Unicast": {"peers": {...}}, ...}``.

        With ``family`` (``"ipv4"``/``"ipv6"``): ``show bgp <family> unicast summary json``, i.e. the
        inner dict with ``"peers"`` directly (``{}`` if no peer is configured for it).
        """
        command = f"show bgp {family} unicast summary" if family else "show bgp summary"
        data: dict[str, Any] = self.json(command)
        return data

    def routes(self, family: str = "ipv4") -> dict[str, Any]:
        """``show bgp <family> unicast json``; the paths are under ``["routes"][prefix]``."""
        data: dict[str, Any] = self.json(f"show bgp {family} unicast")
        return data

    def neighbor(self, addr: str) -> dict[str, Any]:
        """``show bgp neighbors <addr> json`` for one neighbor (the inner dict: ``bgpState`` etc.)."""
        data = self.json(f"show bgp neighbors {addr}")
        if addr not in data:
            raise KeyError(f"{self.name}: no BGP neighbor {addr}: {data}")
        nbr: dict[str, Any] = data[addr]
        return nbr

    def peer_state(self, addr: str) -> str:
        """BGP FSM state of neighbor ``addr`` (``"Established"``, ``"Active"``, ``"Idle"``...)."""
        return str(self.neighbor(addr)["bgpState"])

    def wait_state(self, addr: str, state: str = "Established", timeout: float = 30) -> None:
        """Wait (bounded) until neighbor ``addr`` is in ``state``; ``state="!Established"`` waits for down."""
        if state.startswith("!"):
            unwanted = state[1:]
            wait_until(lambda: self.peer_state(addr) != unwanted, timeout=timeout,
                       what=f"{self.name}: {addr} to leave {unwanted}")  # fmt: skip
        else:
            wait_until(lambda: self.peer_state(addr) == state, timeout=timeout,
                       what=f"{self.name}: {addr} to reach {state}")  # fmt: skip

    def best_path(self, prefix: str, family: str | None = None) -> dict[str, Any] | None:
        """The selected (valid *and* best) BGP path for ``prefix``, or None.

        Note: a path can show up ``valid`` before best-path selection has run on it; waiting on
        ``bestpath`` avoids that race.
        """
        fam = family or ("ipv6" if ":" in prefix else "ipv4")
        paths = self.routes(fam).get("routes", {}).get(prefix, [])
        return next((p for p in paths if p.get("valid") and p.get("bestpath")), None)

    def has_route(self, prefix: str, family: str | None = None) -> bool:
        """Whether the BGP table has a selected (valid, best) path for ``prefix``."""
        return self.best_path(prefix, family) is not None

    def kernel_routes(self, family: int = 4, proto: str | None = "bgp") -> list[dict[str, Any]]:
        """``ip -j -<family> route show proto bgp`` inside the namespace (what zebra installed)."""
        return self.ns.routes(family=family, proto=proto)

    # diagnostics -------------------------------------------------------------------------------

    def _tails(self, daemon: str | None = None, lines: int = 40) -> str:
        parts = []
        for d in [daemon] if daemon else self.daemons:
            for suffix in ("out", "log"):
                try:
                    path = self._path(f"{d}.{suffix}")
                    text = path.read_text(errors="replace").splitlines()[-lines:]
                except (OSError, FrrError):
                    continue
                if text:
                    parts.append(f"--- {self.name} {d}.{suffix} (last {lines} lines) ---\n" + "\n".join(text))
        return "\n".join(parts)

    def diagnostics(
        self, commands: Iterable[str] = ("show bgp summary", "show ip route", "show ipv6 route")
    ) -> str:
        """Human-readable state dump (vtysh output + log tails) for failure reports."""
        parts = [repr(self)]
        if self.running:
            for c in commands:
                try:
                    parts.append(f"--- {self.name}: {c} ---\n{self.vtysh(c)}")
                except Exception as exc:
                    parts.append(f"--- {self.name}: {c} failed: {exc}")
        parts.append(self._tails())
        return "\n".join(parts)
