"""``python -m wamp_bench URL``: the same as ``wampcore bench URL``."""

import sys

from ._cli import main

sys.exit(main())
