"""Data: domains (built-in, folders), image I/O, patches, Avalanche streams; `sources` brings public datasets in.

Importing this package registers the built-in domain kinds and the ``folder`` kind.
"""

from . import builtin, folders  # noqa: F401  (each registers its domain kinds)
