"""Operator mistakes give one line naming the file, field or line and what to do, and exit status 2.

Every case runs the installed ``bgpsvc`` console script of this venv as a user would (so the file also
runs against older trees), with a clean environment: no KUBECONFIG, HOME in the test's directory (no
``~/.kube/config``), no in-cluster variables. A traceback anywhere is a failure.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

BGPSVC = str(Path(sys.executable).with_name("bgpsvc"))
#: Log lines that are not the error (``bgpsvc run`` logs at INFO/WARNING before failing).
_CHATTER = re.compile(r" (INFO|WARNING) |\"level\": \"(info|warning)\"")

STATIC = {
    "local_as": 64512,
    "router_id": "192.0.2.11",
    "listen": False,
    "control": False,
    "peers": [{"address": "127.0.0.2", "peer_as": 64500, "passive": True}],
}
NODE = {
    "local_as": 64512,
    "listen": False,
    "control": False,
    "peers": [{"address": "192.0.2.1", "peer_as": 64500, "password_env": "BGP_PASSWORD"}],
    "kubernetes": {"service_cluster_ips": ["10.96.0.0/12"]},
}


@dataclass
class Case:
    args: list[str]
    pattern: str
    env: dict[str, str] = field(default_factory=dict)


def write(tmp: Path, name: str, data: object) -> str:
    path = tmp / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def clean_env(tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KUBE", "BGP_", "CALICO_", "BGPSVC_")) and k != "NODE_NAME"
    }
    env["HOME"] = str(tmp)
    return env


def bgpsvc(
    tmp: Path, args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BGPSVC, *args],
        check=False,
        cwd=tmp,
        env={**clean_env(tmp), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    assert result.returncode == 2, f"exit status {result.returncode}:\n{text}"
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not _CHATTER.search(ln)]
    assert len(lines) == 1, f"expected one error line, got:\n{result.stderr}"
    assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"


@contextmanager
def busy_port() -> Iterator[int]:
    """A loopback TCP port that something listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def _plan(tmp: Path, *extra: str) -> list[str]:
    return ["plan", "-c", write(tmp, "node.yaml", NODE), "--node", "node-1", "--timeout", "5", *extra]


def _run(tmp: Path, data: object, name: str = "bgpsvc.yaml") -> list[str]:
    return ["run", "-c", write(tmp, name, data)]


KUBECONFIG_BROKEN = "apiVersion: v1\nclusters: [\n"
CASES: dict[str, Callable[[Path], Case]] = {
    "plan without a kubeconfig": lambda t: Case(_plan(t), r"kubeconfig \S*\.kube/config: no such file"),
    "plan with a missing kubeconfig": lambda t: Case(
        _plan(t, "--kubeconfig", str(t / "nope")), r"kubeconfig \S*nope: no such file"
    ),
    "plan with a malformed kubeconfig": lambda t: Case(
        _plan(t, "--kubeconfig", write(t, "kc", KUBECONFIG_BROKEN)), r"kubeconfig \S*kc:\d+: not valid YAML"
    ),
    "plan with a YAML file that is no kubeconfig": lambda t: Case(
        _plan(t, "--kubeconfig", write(t, "kc", "a: b\n")), r"kubeconfig \S*kc: not a kubeconfig"
    ),
    "run without a kubeconfig": lambda t: Case(
        _run(t, NODE), r"kubeconfig \S*\.kube/config: no such file", {"NODE_NAME": "n1", "BGP_PASSWORD": ""}
    ),
    "run with a missing kubeconfig": lambda t: Case(
        _run(t, NODE),
        r"kubeconfig \S*nope: no such file",
        {"NODE_NAME": "n1", "BGP_PASSWORD": "", "KUBECONFIG": str(t / "nope")},
    ),
    "run with a malformed kubeconfig": lambda t: Case(
        _run(t, NODE),
        r"kubeconfig \S*kc:\d+: not valid YAML",
        {"NODE_NAME": "n1", "BGP_PASSWORD": "", "KUBECONFIG": write(t, "kc", KUBECONFIG_BROKEN)},
    ),
    "run without NODE_NAME": lambda t: Case(
        _run(t, NODE), r"kubernetes\.node_name: required .*NODE_NAME", {"BGP_PASSWORD": ""}
    ),
    "a bad CIDR in CALICO_ADVERTISE_CLUSTER_IPS": lambda t: Case(
        _run(t, {**NODE, "kubernetes": {}}),
        r"CALICO_ADVERTISE_CLUSTER_IPS: '10\.96\.0\.0/33'",
        {"NODE_NAME": "n1", "BGP_PASSWORD": "", "CALICO_ADVERTISE_CLUSTER_IPS": "10.96.0.0/33"},
    ),
    "a password_env that is not set": lambda t: Case(
        _run(t, NODE),
        r"peers\[0\]\.password_env: environment variable BGP_PASSWORD is not set",
        {"NODE_NAME": "n"},
    ),
    "as_path=abc in a routes file": lambda t: Case(
        _run(t, {**STATIC, "routes_file": write(t, "r.txt", "198.51.100.0/24 as_path=abc\n")}),
        r"r\.txt:1\.as_path: .*'abc'",
    ),
    "a bad prefix in a routes file": lambda t: Case(
        _run(t, {**STATIC, "routes_file": write(t, "r.txt", "# ok\n198.51.100.1/24\n")}),
        r"r\.txt:2: .*198\.51\.100\.1/24",
    ),
    "a missing routes file": lambda t: Case(
        _run(t, {**STATIC, "routes_file": "nope.txt"}), r"routes_file: no such file: \S*nope\.txt"
    ),
    "a YAML syntax error": lambda t: Case(
        _run(t, "local_as: 64512\nrouter_id: 192.0.2.1\npeers: [\n", "bad.yaml"),
        r"bad\.yaml:\d+:\d+: not valid YAML",
    ),
    "a duplicate YAML key": lambda t: Case(
        _run(t, "local_as: 64512\nrouter_id: 192.0.2.1\nlocal_as: 64513\n", "dup.yaml"),
        r"dup\.yaml:3:\d+: .*duplicate key 'local_as' \(first at line 1\)",
    ),
    "a config file with a control character": lambda t: Case(
        _run(t, b"local_as: 1\x00\n", "bin.yaml"), r"bin\.yaml: not valid YAML: character #x0000 at offset 11"
    ),
    "a config file that does not exist": lambda t: Case(
        ["run", "-c", str(t / "nope.yaml")], r"nope\.yaml: No such file"
    ),
    "a config that is not a mapping": lambda t: Case(_run(t, "- 1\n- 2\n"), r"expected a mapping"),
    "a password_file that is missing": lambda t: Case(
        _run(t, {**STATIC, "peers": [{"address": "192.0.2.1", "peer_as": 1, "password_file": "nope"}]}),
        r"peers\[0\]\.password_file: No such file",
    ),
    "a password_file that is not text": lambda t: Case(
        _run(
            t,
            {
                **STATIC,
                "peers": [
                    {"address": "192.0.2.1", "peer_as": 1, "password_file": write(t, "pw", b"\xff\xfe")}
                ],
            },
        ),
        r"peers\[0\]\.password_file: .*not UTF-8",
    ),
    "an unknown field": lambda t: Case(
        _run(t, {**STATIC, "peers": [{"address": "192.0.2.1", "peer_as": 1, "holdtime": 9}]}),
        r"peers\[0\]\.holdtime: unknown field \(did you mean 'hold_time'\?\)",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_operator_mistake_is_one_line_and_exit_2(name: str, tmp_path: Path) -> None:
    case = CASES[name](tmp_path)
    assert_one_line_error(bgpsvc(tmp_path, case.args, case.env), case.pattern)


def test_control_port_in_use(tmp_path: Path) -> None:
    with busy_port() as port:
        cfg = {**STATIC, "control": {"address": "127.0.0.1", "port": port}}
        result = bgpsvc(tmp_path, _run(tmp_path, cfg), {})
    assert_one_line_error(
        result,
        rf"control endpoint: cannot listen on 127\.0\.0\.1:{port}: address already in use \(set control",
    )


def test_bgp_listen_port_in_use(tmp_path: Path) -> None:
    with busy_port() as port:
        cfg = {**STATIC, "listen": [{"address": "127.0.0.1", "port": port}]}
        result = bgpsvc(tmp_path, _run(tmp_path, cfg), {})
    assert_one_line_error(
        result, rf"cannot start: listen on \[127\.0\.0\.1\]:{port}: Address already in use \("
    )
