"""Name -> TTS engine registry (duplicates refused) and the fallback chain."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, ClassVar

from voice.registry import Registry
from voice.tts.base import Speech, TtsError

if TYPE_CHECKING:
    from foundation.settings import TtsSettings
    from voice.tts.base import TtsEngine

log = logging.getLogger(__name__)

TTS_REGISTRY: Registry[TtsEngine] = Registry("TTS")
TTS_ENGINES = TTS_REGISTRY.engines
register_tts = TTS_REGISTRY.register
FALLBACK_ENGINE = "espeak"


class FallbackTts:
    """Speaks with the primary engine and, when it fails, with the fallback, so a reply is never silent."""

    name: ClassVar[str] = "fallback"

    def __init__(self, primary: TtsEngine, fallback: TtsEngine | None, cache_size: int = 512):
        self.primary = primary
        self.fallback = fallback
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def telephone(self, text: str) -> bytes:
        """``text`` as 8 kHz mu-law. Answers repeat call after call, so what the primary voice said is kept
        (least recently used out): a repeated sentence costs no synthesis. Fallback speech is not kept."""
        with self._lock:
            audio = self._cache.get(text)
            if audio is not None:
                self._cache.move_to_end(text)
                return audio
        speech, by_primary = self._synthesize(text)
        audio = speech.to_telephone()
        if by_primary:
            with self._lock:
                self._cache[text] = audio
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return audio

    def _synthesize(self, text: str) -> tuple[Speech, bool]:
        """The primary voice's speech, else the fallback's; and whether the primary spoke."""
        try:
            return self.primary.synthesize(text), True
        except TtsError:
            if self.fallback is None:
                raise
            log.exception("TTS engine %s failed; speaking with %s", self.primary.name, self.fallback.name)
            return self.fallback.synthesize(text), False


def _load_builtin_engines() -> None:
    import voice.tts.espeak  # noqa: F401
    import voice.tts.piper  # noqa: F401


def create_tts(settings: TtsSettings) -> FallbackTts:
    """The configured engine, backed by espeak-ng where that is installed and is not already the primary."""
    _load_builtin_engines()
    primary = TTS_REGISTRY.get(settings.engine)(settings)
    fallback = None
    if settings.engine != FALLBACK_ENGINE:
        try:
            fallback = TTS_REGISTRY.get(FALLBACK_ENGINE)(settings)
        except TtsError as e:
            log.warning("no TTS fallback: %s", e)
    return FallbackTts(primary, fallback)
