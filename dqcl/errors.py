"""The exceptions whose message is what the user reads.

Every error a user can cause by what they type or point at is a `DqclError`; the CLI turns
it into one line on stderr and exit code 2. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["DqclError", "DataError", "SpecError", "RegistryError", "StoreError", "CheckpointError", "OutputError", "ProtocolError", "Interrupted"]


class DqclError(Exception):
    """A problem with the user's input; ``str(err)`` is the whole message."""


class DataError(DqclError):
    """An image folder, image or mask that cannot be used."""


class SpecError(DqclError):
    """A benchmark spec that is malformed or names something unknown."""


class RegistryError(DqclError):
    """An unknown or duplicate name in a registry."""


class StoreError(DqclError):
    """A results store that cannot be read or written."""


class CheckpointError(DqclError):
    """A run checkpoint that cannot be written, or read back into the run it belongs to."""


class ProtocolError(DqclError):
    """Stored runs that would be pooled or compared though their protocols differ."""


class OutputError(DqclError):
    """A file dqcl was asked to write that cannot be written where it was asked."""


class Interrupted(Exception):
    """A study stopped by the user (Ctrl-C); ``str(err)`` says what is stored and how to finish."""
