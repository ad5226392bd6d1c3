"""The Kubernetes API client for ``bgpsvc run`` and ``plan``, with operator mistakes as one clear line.

The client's own loader raises its ``ConfigException``, YAML errors or worse for a missing, empty or
malformed kubeconfig; here each becomes a ``KubeconfigError`` naming the file and what to do (the app
turns it into its ``ConfigError``: one line, exit status 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes.config.config_exception import ConfigException

from .listwatch import load_api_client


class KubeconfigError(ValueError):
    """The API client cannot be configured; the message names the file and what to do."""


#: Where the client looks when neither the config nor KUBECONFIG names a file.
DEFAULT_KUBECONFIG = "~/.kube/config"
_HOW = "give --kubeconfig, kubernetes.kubeconfig or KUBECONFIG, or run in a pod with a service account"


def kubeconfig_files(kubeconfig: str | None, env: Mapping[str, str]) -> list[Path]:
    """The files the client would read (KUBECONFIG may list several, ':'-separated)."""
    text = kubeconfig or env.get("KUBECONFIG") or DEFAULT_KUBECONFIG
    return [Path(p).expanduser() for p in text.split(os.pathsep) if p]


def _check_file(path: Path) -> None:
    if not path.exists():
        raise KubeconfigError(f"kubeconfig {path}: no such file ({_HOW})")
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise KubeconfigError(f"kubeconfig {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise KubeconfigError(f"kubeconfig {path}: not a text file") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise KubeconfigError(f"kubeconfig {where}: not valid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"kubeconfig {path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not data.get("clusters"):
        raise KubeconfigError(f"kubeconfig {path}: not a kubeconfig (no clusters: section)")


def api_client(kubeconfig: str | None, env: Mapping[str, str] | None = None) -> Any:
    """An ``ApiClient`` (in-cluster without a kubeconfig in a pod); ``KubeconfigError`` when it cannot be."""
    env = os.environ if env is None else env
    in_cluster = kubeconfig is None and bool(env.get("KUBERNETES_SERVICE_HOST"))
    files = [] if in_cluster else kubeconfig_files(kubeconfig, env)
    for path in files:
        _check_file(path)
    where = "in-cluster service account" if in_cluster else f"kubeconfig {', '.join(map(str, files))}"
    try:
        return load_api_client(kubeconfig)
    except ConfigException as exc:
        raise KubeconfigError(f"{where}: {exc} ({_HOW})") from None
    except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
        raise KubeconfigError(f"{where}: cannot be used: {type(exc).__name__}: {exc}") from None
