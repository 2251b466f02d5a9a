"""The earlier name of :mod:`genrec.discovery` (finding and loading plugins), kept for code that imports it.

``genrec.plugins`` read too much like ``genrec_plugins``, the package of the built-in plugins.
"""

import warnings

from genrec.discovery import *  # noqa: F403
from genrec.discovery import get_plugins, get_registry  # noqa: F401

warnings.warn("genrec.plugins is now genrec.discovery", DeprecationWarning, stacklevel=2)
