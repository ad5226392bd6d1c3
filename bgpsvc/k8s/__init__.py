"""Kubernetes service advertisement: informers (the only Kubernetes I/O), frozen views, desired routes, reconciler."""
