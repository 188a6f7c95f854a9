"""A small explicit registry that turns strings into classes or functions.

Names are normalised (case, ``-`` and ``_`` ignored) and an unknown name fails
with the list of valid choices and the nearest match::

    AGGREGATES = Registry("aggregate")

    @AGGREGATES.register("sum")
    def sum_aggregate(...): ...

    AGGREGATES.get("Sum")          # -> sum_aggregate
    AGGREGATES.get("summ")         # ConfigError: unknown aggregate 'summ'; did you mean 'sum'? ...
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from graphlearn.errors import ConfigError

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """Lower-case a name and drop ``-``, ``_`` and spaces."""
    return "".join(ch for ch in name.lower() if ch not in "-_ ")


def did_you_mean(name: str, choices: list[str]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


class Registry(Generic[T]):
    """Maps normalised names to objects of one kind (``kind`` is used in messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._names: dict[str, str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        key = normalize_name(name)

        def decorator(obj: T) -> T:
            if key in self._items and self._items[key] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[key] = obj
            self._names[key] = name
            return obj

        return decorator

    def get(self, name: str) -> T:
        if not isinstance(name, str):
            raise ConfigError(f"{self.kind} must be a string, got {type(name).__name__}")
        key = normalize_name(name)
        if key not in self._items:
            names = self.names()
            raise ConfigError(
                f"unknown {self.kind} {name!r}{did_you_mean(name, names)} "
                f"(valid: {', '.join(names)})"
            )
        return self._items[key]

    def names(self) -> list[str]:
        return sorted(self._names.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name) in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
