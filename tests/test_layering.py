"""Dependency arrows point one way (STYLE §1): wire <- rib <- fsm/bfd <- k8s/aio <- app; lab: demo, tests.

Imports are read from the source (every ``import`` statement, also inside functions), and what a program
really loads is checked by importing it in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "bgpsvc"
#: package -> bgpsvc packages it may import
ALLOWED = {
    "wire": {"wire"},
    "rib": {"wire", "rib"},
    "fsm": {"wire", "rib", "fsm"},
    "bfd": {"wire", "bfd"},
    "k8s": {"wire", "rib", "fsm", "k8s"},
    "aio": {"wire", "rib", "fsm", "bfd", "aio"},
    "app": {"wire", "rib", "fsm", "bfd", "k8s", "aio", "app", "lab"},
    "lab": {"lab", "k8s", "wire"},
}
#: Packages that are pure protocol: no clock, no socket, no thread, no event loop.
SANS_IO = ("wire", "rib", "fsm", "bfd")
IO_MODULES = {"asyncio", "socket", "time", "threading", "selectors", "select", "signal", "subprocess"}
#: The only app modules that may import the in-repo lab (API server, namespaces).
LAB_USERS = {"app/demo.py"}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    parts = path.relative_to(PKG).parts
    pkg = parts[0] if len(parts) > 1 else ""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                out.add(node.module or "")
            else:
                base = ["bgpsvc", pkg][: 3 - node.level] if pkg else ["bgpsvc"]
                out.add(".".join([*base, node.module or ""]).rstrip("."))
    return out


def modules(package: str) -> list[Path]:
    return sorted((PKG / package).rglob("*.py"))


def test_every_package_has_a_place_in_the_layers() -> None:
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    for path in modules(package):
        for mod in imports(path):
            if mod.startswith("bgpsvc."):
                target = mod.split(".")[1]
                assert target in ALLOWED[package], f"{path.relative_to(PKG)} imports {mod}"


def test_wire_and_bfd_use_the_standard_library_only() -> None:
    stdlib = set(sys.stdlib_module_names)
    for package in ("wire", "bfd"):
        for path in modules(package):
            for mod in imports(path):
                top = mod.split(".")[0]
                assert top in stdlib or top in ("bgpsvc", "__future__"), f"{path.name} imports {mod}"


def test_only_k8s_touches_the_kubernetes_client() -> None:
    for path in PKG.rglob("*.py"):
        if path.relative_to(PKG).parts[0] == "k8s":
            continue
        assert not any(m.split(".")[0] == "kubernetes" for m in imports(path)), path


@pytest.mark.parametrize("package", SANS_IO)
def test_protocol_packages_touch_no_clock_socket_or_loop(package: str) -> None:
    for path in modules(package):
        bad = {m for m in imports(path) if m.split(".")[0] in IO_MODULES}
        assert not bad, f"{path.relative_to(PKG)} imports {bad}"


def test_only_the_demo_imports_the_lab() -> None:
    for path in modules("app"):
        rel = str(path.relative_to(PKG))
        uses_lab = any(m.startswith("bgpsvc.lab") for m in imports(path))
        assert not uses_lab or rel in LAB_USERS, f"{rel} imports bgpsvc.lab"


def _loaded(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        cwd=PKG.parent,
        timeout=60,
    ).stdout
    return set(out.split())


def test_bgpsvc_decode_loads_neither_the_kubernetes_client_nor_the_lab() -> None:
    hexmsg = "ffffffffffffffffffffffffffffffff001304"
    mods = _loaded(f"from bgpsvc.app.cli import main\nmain(['decode', '{hexmsg}'])")
    assert "bgpsvc.wire" in mods
    assert not {m for m in mods if m.split(".")[0] == "kubernetes" or m.startswith("bgpsvc.lab")}


def test_the_library_surface_loads_neither_the_kubernetes_client_nor_the_lab() -> None:
    mods = _loaded("import bgpsvc.wire, bgpsvc.rib, bgpsvc.fsm, bgpsvc.bfd, bgpsvc.aio")
    assert "bgpsvc.aio.speaker" in mods
    bad = {
        m
        for m in mods
        if m.split(".")[0] in ("kubernetes", "yaml") or m.startswith(("bgpsvc.lab", "bgpsvc.app"))
    }
    assert not bad
