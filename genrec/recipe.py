"""The earlier name of :mod:`genrec.recipe_command` (the command of a recipe), kept for code that imports it.

``genrec.recipe`` read too much like ``genrec_recipes``, the package of the built-in recipes.
"""

import warnings

from genrec.recipe_command import *  # noqa: F403
from genrec.recipe_command import recipe_command, run_recipe  # noqa: F401

warnings.warn("genrec.recipe is now genrec.recipe_command", DeprecationWarning, stacklevel=2)
