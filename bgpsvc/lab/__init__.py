"""Lab tooling for tests and the demo: an in-process API server that speaks Kubernetes list/watch."""

from bgpsvc.lab.apiserver import ApiServer

__all__ = ["ApiServer"]
