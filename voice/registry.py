"""A name -> engine class registry that refuses duplicates; one per engine kind (ASR, TTS)."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")
C = TypeVar("C")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self.engines: dict[str, type[T]] = {}

    def register(self, cls: C) -> C:
        """Class decorator: registers ``cls`` under its ``name``."""
        name = cls.name  # type: ignore[attr-defined]
        if name in self.engines:
            raise ValueError(f"{self.kind} engine {name!r} is registered twice")
        self.engines[name] = cls  # type: ignore[assignment]
        return cls

    def get(self, name: str) -> type[T]:
        try:
            return self.engines[name]
        except KeyError:
            raise ValueError(
                f"unknown {self.kind} engine {name!r}; registered: {', '.join(sorted(self.engines))}"
            ) from None
