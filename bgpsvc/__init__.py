"""bgpsvc: a pure-Python BGP-4 speaker that advertises Kubernetes Service IPs to routers."""

__version__ = "0.1.0"
