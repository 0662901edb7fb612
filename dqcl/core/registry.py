"""Name -> factory registries filled by decorators (domains, strategies, dataset recipes)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from ..errors import RegistryError
from .validation import did_you_mean

__all__ = ["Entry", "Registry"]

F = TypeVar("F", bound=Callable)


@dataclass(frozen=True)
class Entry(Generic[F]):
    name: str
    factory: F
    description: str
    reference: str


class Registry(Generic[F]):
    """A typed dict of named factories with a registering decorator.

    Registering a name twice is an error; looking up an unknown name names the closest
    registered ones and lists them all.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[F]] = {}

    def register(self, name: str, *, description: str, reference: str = "") -> Callable[[F], F]:
        def decorate(factory: F) -> F:
            if name in self._entries:
                raise RegistryError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = Entry(name, factory, description, reference)
            return factory

        return decorate

    def unregister(self, name: str) -> None:
        """Forget ``name`` (a test's or a notebook's temporary entry); unknown names are ignored."""
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry[F]:
        try:
            return self._entries[name]
        except KeyError:
            names = sorted(self._entries)
            raise RegistryError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, names)}; known: {', '.join(names)}"
            ) from None

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
