"""dqcl's built-in continual-learning strategies, one file each (installed as ``dqcl.strategies``).

Importing this package imports every file in it, and each file registers its strategy.
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")
