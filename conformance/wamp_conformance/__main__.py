"""``python -m wamp_conformance URL``: the same as ``wampcore conformance URL``."""

import sys

from ._cli import main

sys.exit(main())
