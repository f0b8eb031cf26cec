"""The ASR engine registry. Engines register themselves by module import; duplicates are refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

from voice.registry import Registry

if TYPE_CHECKING:
    from foundation.settings import AsrSettings
    from voice.asr.base import AsrEngine

ASR_REGISTRY: Registry[AsrEngine] = Registry("ASR")
ASR_ENGINES = ASR_REGISTRY.engines
register_asr = ASR_REGISTRY.register


def load_builtin_engines() -> None:
    import voice.asr.faster_whisper  # noqa: F401
    import voice.asr.openai_whisper  # noqa: F401
    import voice.asr.vosk  # noqa: F401


def asr_engine_class(name: str) -> type[AsrEngine]:
    """The registered engine called ``name``, not loaded (its name and capabilities)."""
    load_builtin_engines()
    return ASR_REGISTRY.get(name)  # type: ignore[return-value]


def create_asr(settings: AsrSettings) -> AsrEngine:
    """Build the engine named in settings; a clear error names the registered ones."""
    load_builtin_engines()
    return ASR_REGISTRY.get(settings.engine)(settings)
