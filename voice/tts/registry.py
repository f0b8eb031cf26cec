"""Name -> TTS engine registry (duplicates refused) and the fallback chain."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
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

    def __init__(
        self, primary: TtsEngine, fallback: TtsEngine | None, cache_size: int = 512, disk_cache: Path | None = None
    ):
        self.primary = primary
        self.fallback = fallback
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._disk = disk_cache  # a folder for this voice and its settings, or None
        self._lock = threading.Lock()

    def telephone(self, text: str) -> bytes:
        """``text`` as 8 kHz mu-law. Answers repeat call after call, so what the primary voice said is kept
        (least recently used out; also on disk when configured): a repeated sentence costs no synthesis. Fallback
        speech is not kept."""
        with self._lock:
            audio = self._cache.get(text)
            if audio is not None:
                self._cache.move_to_end(text)
                return audio
        audio = self._from_disk(text)
        by_primary = audio is not None
        if audio is None:
            speech, by_primary = self._synthesize(text)
            audio = speech.to_telephone()
            if by_primary:
                self._to_disk(text, audio)
        if by_primary:
            with self._lock:
                self._cache[text] = audio
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return audio

    def _disk_path(self, text: str) -> Path | None:
        if self._disk is None:
            return None
        return self._disk / f"{hashlib.sha256(text.encode()).hexdigest()[:32]}.ulaw"

    def _from_disk(self, text: str) -> bytes | None:
        path = self._disk_path(text)
        try:
            return path.read_bytes() if path is not None else None
        except OSError:  # not there yet, or unreadable: synthesise
            return None

    def _to_disk(self, text: str, audio: bytes) -> None:
        path = self._disk_path(text)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
            partial.write_bytes(audio)
            partial.replace(path)  # atomic: a reader never sees half a sentence
        except OSError as e:  # a full or read-only disk costs only the cache
            log.warning("voice cache: could not keep %s: %s", path, e)

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


def create_tts(settings: TtsSettings, cache_root: Path | None = None) -> FallbackTts:
    """The configured engine, backed by espeak-ng where that is installed and is not already the primary. With
    ``cache_root`` (and ``disk_cache`` on), the primary voice's sentences are kept under it, in a folder named by
    the engine and every setting that changes its sound."""
    _load_builtin_engines()
    primary = TTS_REGISTRY.get(settings.engine)(settings)
    fallback = None
    if settings.engine != FALLBACK_ENGINE:
        try:
            fallback = TTS_REGISTRY.get(FALLBACK_ENGINE)(settings)
        except TtsError as e:
            log.warning("no TTS fallback: %s", e)
    disk = None
    if cache_root is not None and settings.disk_cache:
        voice = f"{settings.engine}:{settings.model_dump_json(exclude={'disk_cache'})}"
        disk = cache_root / f"{settings.engine}-{hashlib.sha256(voice.encode()).hexdigest()[:16]}"
    return FallbackTts(primary, fallback, disk_cache=disk)
