"""The ASR engine Protocol, its capabilities and its result type."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from helpline.settings import AsrSettings


class AsrError(RuntimeError):
    """Recognition failed; ``retryable`` says whether the same audio may succeed on a second try."""

    def __init__(self, message: str, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class AsrCapabilities:
    streaming_partials: bool
    word_confidences: bool
    languages: tuple[str, ...]
    contextual_biasing: bool = False  # the engine uses a RecognitionContext (others ignore it)


@dataclass(frozen=True)
class RecognitionContext:
    """What the caller is likely to say, for engines that can be biased: ``prompt`` reads as the text before the
    utterance (Whisper's initial prompt: the domain's words and the question the caller is answering), ``hotwords``
    are terms to favour. Empty fields bias nothing."""

    prompt: str = ""
    hotwords: str = ""


@dataclass(frozen=True)
class Word:
    text: str
    confidence: float


def segments_confidence(segments: list[tuple[float, int]]) -> float:
    """Whisper's confidence for a transcript made of segments (average token log-probability, token count): the
    token-weighted mean log-probability, as a probability."""
    weights = [max(1, tokens) for _, tokens in segments]
    avg_logprob = sum(lp * w for (lp, _), w in zip(segments, weights, strict=True)) / sum(weights)
    return round(min(1.0, math.exp(avg_logprob)), 3)


@dataclass(frozen=True)
class Hypothesis:
    """A runner-up transcript (n-best list entry) with its confidence in [0, 1]."""

    text: str
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """A final transcript. ``confidence`` is in [0, 1]; ``no_speech`` is the engine's belief that it heard no speech."""

    text: str
    confidence: float
    language: str
    audio_s: float
    words: tuple[Word, ...] = field(default=())
    no_speech: float = 0.0
    alternatives: tuple[Hypothesis, ...] = field(default=())  # n-best after the best, most likely first

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


def join_transcripts(pieces: list[Transcript]) -> Transcript:
    """Consecutive pieces of one utterance as one transcript: words in order, confidences weighted by audio length,
    the engine's no-speech belief of the most speech-like piece (n-best lists do not carry over)."""
    if len(pieces) == 1:
        return pieces[0]
    spoken = [p for p in pieces if not p.is_empty] or pieces[:1]
    audio_s = sum(p.audio_s for p in pieces)
    weight = sum(p.audio_s for p in spoken) or 1.0
    return Transcript(
        text=" ".join(p.text.strip() for p in spoken),
        confidence=round(sum(p.confidence * p.audio_s for p in spoken) / weight, 3),
        language=spoken[0].language,
        audio_s=audio_s,
        words=tuple(w for p in spoken for w in p.words),
        no_speech=min(p.no_speech for p in spoken),
    )


class AsrEngine(Protocol):
    """A loaded recognizer. ``transcribe`` blocks: callers run it off the event loop (asyncio.to_thread)."""

    name: ClassVar[str]
    capabilities: ClassVar[AsrCapabilities]

    def __init__(self, settings: AsrSettings) -> None: ...

    def transcribe(self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None) -> Transcript:
        """Transcribe float32 mono audio at any sample rate, biased by ``context`` where the engine can be."""
        ...


class TranscriptStream(Protocol):
    """One utterance recognised while it is spoken (engines with ``streaming_partials``)."""

    def accept(self, pcm16: np.ndarray) -> str:
        """Feed int16 audio; returns the words recognised so far."""
        ...

    def finish(self) -> Transcript: ...

    # True when the last chunk fed closed a segment: the recogniser's own endpointer heard the speech stop.
    segment_closed: bool


class StreamingAsrEngine(AsrEngine, Protocol):
    def stream(self, sample_rate: int) -> TranscriptStream: ...
