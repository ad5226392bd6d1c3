"""Adj-RIB-Out and Adj-RIB-In: desired set -> delta -> packed UPDATEs. Imports ``bgpsvc.wire`` only."""

from .adj_rib_in import AdjRibIn, ReceivedRoute
from .adj_rib_out import EMPTY, AdjRibOut, Delta
from .export import DEFAULT_ROUTE, Attrs, Export, RouteAttrs

__all__ = [
    "DEFAULT_ROUTE",
    "EMPTY",
    "AdjRibIn",
    "AdjRibOut",
    "Attrs",
    "Delta",
    "Export",
    "ReceivedRoute",
    "RouteAttrs",
]
