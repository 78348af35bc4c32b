"""``python -m wamp_trio``: the ``wampcore`` command."""

import sys

from ._cli import main

sys.exit(main())
