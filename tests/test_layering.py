"""Dependency arrows point one way (STYLE §1): wire <- fsm/rib <- k8s/aio <- cli; only k8s uses Kubernetes."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "bgpsvc"
#: package -> bgpsvc packages it may import
ALLOWED = {
    "wire": {"wire"},
    "fsm": {"wire", "fsm"},
    "rib": {"wire", "rib"},
    "k8s": {"wire", "rib", "k8s"},
    "bfd": {"wire", "bfd"},
    "aio": {"wire", "fsm", "rib", "bfd", "aio"},
    "lab": {"lab", "k8s", "wire"},
}


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = path.relative_to(PKG).parts[0] if len(path.relative_to(PKG).parts) > 1 else ""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                out.add(node.module or "")
            else:
                # resolve relative imports inside bgpsvc/<pkg>/...
                base = ["bgpsvc", pkg][: 3 - node.level] if pkg else ["bgpsvc"]
                out.add(".".join([*base, node.module or ""]).rstrip("."))
    return out


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_it_may(package: str) -> None:
    for path in (PKG / package).rglob("*.py"):
        for mod in imports(path):
            if mod.startswith("bgpsvc."):
                target = mod.split(".")[1]
                assert target in ALLOWED[package], f"{path.relative_to(PKG)} imports {mod}"


def test_wire_uses_the_standard_library_only() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in [*(PKG / "wire").rglob("*.py"), *(PKG / "bfd").rglob("*.py")]:
        for mod in imports(path):
            top = mod.split(".")[0]
            assert top in stdlib or top in ("bgpsvc", "__future__"), f"{path.name} imports {mod}"


def test_only_k8s_touches_the_kubernetes_client() -> None:
    for path in PKG.rglob("*.py"):
        if path.relative_to(PKG).parts[0] in ("k8s",):
            continue
        assert not any(m.split(".")[0] == "kubernetes" for m in imports(path)), path


def test_only_aio_and_the_top_level_touch_asyncio_and_sockets() -> None:
    for package in ("wire", "fsm", "rib", "bfd"):
        for path in (PKG / package).rglob("*.py"):
            bad = {m for m in imports(path) if m.split(".")[0] in ("asyncio", "socket", "time", "threading")}
            assert not bad, f"{path.relative_to(PKG)} imports {bad}"
