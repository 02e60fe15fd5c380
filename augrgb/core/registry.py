"""A tiny name -> class registry (timm-style) for swappable parts: temporal filters, KD losses, decoders.

A config names a part by string; ``REG.build(name, **kwargs)`` constructs it, and a typo is a
one-line :class:`~augrgb.core.errors.InputError` listing the known names.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from augrgb.core.errors import InputError

T = TypeVar("T", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Maps names to constructors of one kind of part (the ``kind`` appears in error messages)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator adding a class (or factory) under ``name``; registering a name twice is a bug."""
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is already registered by {self._entries[name]!r}")
            self._entries[name] = entry
            return entry
        return add

    def get(self, name: str) -> T:
        """The constructor registered under ``name``; unknown names raise a one-line InputError."""
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            close = difflib.get_close_matches(str(name), self.names(), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise InputError(name, f"unknown {self.kind} (known: {known}{hint})") from None

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Construct the part registered under ``name``; an option it does not take is a one-line InputError."""
        entry = self.get(name)
        try:
            params = inspect.signature(entry).parameters
        except (TypeError, ValueError):  # no introspectable signature: let the call decide
            return entry(*args, **kwargs)
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            taken = [n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL][len(args):]
            unknown = [key for key in kwargs if key not in params]
            if unknown:
                raise InputError(name, f"the {self.kind} takes no option {unknown[0]!r} (its options: {', '.join(taken) or 'none'})")
        return entry(*args, **kwargs)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {self.names()})"
