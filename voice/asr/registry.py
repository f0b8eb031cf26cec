"""Name -> engine class registry. Engines register themselves by module import; duplicates are refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from helpline.settings import AsrSettings
    from voice.asr.base import AsrEngine

ASR_ENGINES: dict[str, type[AsrEngine]] = {}

E = TypeVar("E")


def register_asr(cls: E) -> E:
    name = cls.name  # type: ignore[attr-defined]
    if name in ASR_ENGINES:
        raise ValueError(f"ASR engine {name!r} is registered twice")
    ASR_ENGINES[name] = cls  # type: ignore[assignment]
    return cls


def _load_builtin_engines() -> None:
    import voice.asr.faster_whisper  # noqa: F401


def create_asr(settings: AsrSettings) -> AsrEngine:
    """Build the engine named in settings; a clear error names the registered ones."""
    _load_builtin_engines()
    try:
        cls = ASR_ENGINES[settings.engine]
    except KeyError:
        raise ValueError(
            f"unknown ASR engine {settings.engine!r}; registered: {', '.join(sorted(ASR_ENGINES))}"
        ) from None
    return cls(settings)
