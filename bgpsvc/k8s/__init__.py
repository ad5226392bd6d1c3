"""Kubernetes service advertisement.

Informers (the only Kubernetes I/O), frozen views, the pure desired-routes function and the reconciler.
"""
