"""The harness lives in ``bgpsvc.lab.netlab`` (the demo uses it too); this name stays for the tests."""

import sys

from bgpsvc.lab import netlab as _netlab

sys.modules[__name__] = _netlab
