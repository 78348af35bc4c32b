"""The scenario catalogue: importing it registers every scenario, in this order."""
# isort: skip_file

from . import session  # noqa: F401
from . import rpc  # noqa: F401
from . import pubsub  # noqa: F401
from . import advanced_rpc  # noqa: F401
from . import advanced_pubsub  # noqa: F401
from . import meta  # noqa: F401
from . import raw  # noqa: F401
from . import transport  # noqa: F401
from . import auth  # noqa: F401
