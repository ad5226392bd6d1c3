"""bgpsvc installs and runs outside the checkout, and the command line explains itself.

- The wheel is built from exactly what the Dockerfile's build stage copies out of the build context
  (the context filtered by ``deploy/Dockerfile.dockerignore``), so it holds what the image would: the
  package data (the demo's cluster), the LICENSE. It is installed into a fresh venv in a temporary
  directory (dependencies from the package index) and ``bgpsvc demo --duration 0`` runs there.
- ``--version``, a help text on every option of every command, and a description that says what
  bgpsvc is.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from bgpsvc.app.cli import parser

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / "deploy" / "Dockerfile.dockerignore"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
#: Never part of a build context worth walking.
_SKIP = {".git", ".venv", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "build", "dist"}


def _regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def context_files() -> list[str]:
    """Files of the build context: .dockerignore rules in order, the last match wins, and a rule that
    matches a directory applies to everything under it (Docker's semantics)."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, _regex(line.lstrip("!").strip("/"))))
    files = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if not path.is_file() or rel.parts[0] in _SKIP:
            continue
        prefixes = ["/".join(rel.parts[: i + 1]) for i in range(len(rel.parts))]
        included = True
        for negate, rx in rules:
            if any(rx.match(p) for p in prefixes):
                included = negate
        if included:
            files.append(rel.as_posix())
    return files


def build_stage_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of the first stage's COPY instructions (the stage that pip-installs)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    steps = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    stage = steps[: next(i for i, s in enumerate(steps[1:], 1) if s.upper().startswith("FROM "))]
    copies = []
    for step in stage:
        if step.upper().startswith("COPY ") and "--from" not in step:
            *sources, dest = shlex.split(step)[1:]
            copies.append((sources, dest))
    return copies


def docker_build_tree(dest: Path) -> Path:
    """What the build stage's WORKDIR holds before ``pip install .`` (Docker's COPY: a file goes into a
    destination ending in ``/`` under its own name, a directory's contents go into the destination)."""
    context = set(context_files())
    for sources, target in build_stage_copies():
        for src in sources:
            if src in context:
                pairs = [(src, Path(target) / Path(src).name if target.endswith("/") else Path(target))]
            else:
                under = sorted(f for f in context if f.startswith(src.rstrip("/") + "/"))
                pairs = [(f, Path(target) / Path(f).relative_to(src)) for f in under]
            assert pairs, f"COPY {src}: not in the build context (see Dockerfile.dockerignore)"
            for f, out in pairs:
                (dest / out).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / f, dest / out)
    return dest


def test_the_build_context_holds_the_package_and_its_data() -> None:
    files = context_files()
    assert {"pyproject.toml", "README.md", "LICENSE", "bgpsvc/app/data/demo-cluster.yaml"} <= set(files)
    assert not [f for f in files if f.startswith(("tests/", ".venv/")) or "__pycache__" in f]


def test_the_wheel_installs_in_a_fresh_venv_and_runs_the_demo(tmp_path: Path) -> None:
    src = docker_build_tree(tmp_path / "src")
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-q", "-w", str(dist), str(src)], check=True, timeout=600)
    (wheel,) = dist.glob("bgpsvc-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bgpsvc/app/data/demo-cluster.yaml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not [n for n in names if n.startswith("tests/")]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    vpip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*vpip, "install", "-q", str(wheel)], check=True, timeout=900)
    bgpsvc = str(venv / "bin" / "bgpsvc")
    run = tmp_path / "elsewhere"  # not the checkout: nothing can come from the source tree
    run.mkdir()
    version = subprocess.run(
        [bgpsvc, "--version"], cwd=run, capture_output=True, text=True, check=True, timeout=60
    )
    assert version.stdout.strip() == f"bgpsvc {VERSION}"
    demo = subprocess.run(
        [bgpsvc, "demo", "--duration", "0", "--pause", "0"],
        cwd=run,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Traceback" not in demo.stderr
    assert "198.51.100" in demo.stdout or "10.96.0.0" in demo.stdout, demo.stdout


def test_license_is_the_apache_2_text() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"] == "Apache-2.0"


def _actions(p: argparse.ArgumentParser, path: str) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            out.append((path, action))
            for name, sub in action.choices.items():
                out += _actions(sub, f"{path} {name}")
        else:
            out.append((path, action))
    return out


def test_every_option_has_help_text() -> None:
    missing = [
        f"{path} {'/'.join(a.option_strings) or a.dest}"
        for path, a in _actions(parser(), "bgpsvc")
        if not (a.help or "").strip()
    ]
    assert not missing, f"options without help text: {missing}"
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    for choice in sub._choices_actions:
        assert choice.help, f"command {choice.dest} has no help"


def test_help_says_what_bgpsvc_is_and_version_works() -> None:
    text = parser().format_help()
    assert "for now" not in text and "BGP" in text
    for command in ("run", "status", "routes", "plan", "demo", "decode", "encode"):
        assert re.search(rf"^\s+{command}\s+\S", text, re.M), f"{command} not described in --help"
    bgpsvc = str(Path(sys.executable).with_name("bgpsvc"))
    out = subprocess.run([bgpsvc, "--version"], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == f"bgpsvc {VERSION}"


def test_the_readme_says_what_bgpsvc_is_not_and_shows_the_library() -> None:
    readme = (ROOT / "README.md").read_text()
    not_part = readme.split("**What it is not.**", 1)[1].split("\n\n", 1)[0]
    for allocator in ("MetalLB", "kube-vip", "Cilium LB-IPAM", "PureLB", "OpenELB"):
        assert allocator in not_part, allocator
    assert "allocates none" in not_part
    assert "(docs/config.md)" in readme and (ROOT / "docs" / "config.md").is_file()
    library = readme.split("## The speaker as a library", 1)[1].split("\n## ", 1)[0]
    for shown in ("wait_established(", "local_address=", "port=", "set_routes(", "stop()"):
        assert shown in library, shown
    assert "docker push" in readme and "placeholder" in readme
