"""``python -m bgpsvc``: the same as the ``bgpsvc`` command."""

import sys

from bgpsvc.app.cli import main

sys.exit(main())
