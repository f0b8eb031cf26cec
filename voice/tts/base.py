"""The TTS engine Protocol and its result type."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

from voice.codecs import TELEPHONE_RATE, pcm16_to_float, resample, ulaw_encode

if TYPE_CHECKING:
    from foundation.settings import TtsSettings


class TtsError(RuntimeError):
    """Synthesis failed."""


@dataclass(frozen=True)
class Speech:
    """Synthesised speech: int16 mono PCM at ``sample_rate``."""

    pcm: np.ndarray
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate

    def samples_at(self, rate: int) -> np.ndarray:
        """float32 mono at ``rate`` (a synthetic caller's voice, say, at 8 kHz as the phone line carries it)."""
        return resample(pcm16_to_float(self.pcm), self.sample_rate, rate)

    def to_telephone(self) -> bytes:
        """8 kHz G.711 mu-law, as Twilio plays it."""
        return ulaw_encode(resample(self.pcm, self.sample_rate, TELEPHONE_RATE))


class TtsEngine(Protocol):
    """A loaded voice. ``synthesize`` blocks: callers run it off the event loop."""

    name: ClassVar[str]

    def __init__(self, settings: TtsSettings) -> None: ...

    def synthesize(self, text: str) -> Speech: ...


class TelephoneVoice(Protocol):
    """What a call needs of synthesis: a sentence as 8 kHz mu-law, blocking (registry.FallbackTts: cached, with a
    fallback engine)."""

    def telephone(self, text: str) -> bytes: ...


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")


def split_sentences(text: str) -> list[str]:
    """Split a reply into sentences, so the first can play while the rest is synthesised."""
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]
