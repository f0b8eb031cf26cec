"""The ASR engine Protocol, its capabilities and its result type."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:
    from foundation.settings import AsrSettings


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
    """How to hear one utterance. What the caller is likely to say, for engines that can be biased: ``prompt`` reads
    as the text before the utterance (Whisper's initial prompt: the domain's words and the question the caller is
    answering), ``hotwords`` are terms to favour; empty fields bias nothing. ``hurry``: callers are waiting for a
    recogniser, so an engine that can trade a little accuracy for time does (faster-whisper: a shorter encoder
    window, ``ASR__WINDOW_UNDER_LOAD_S``); others ignore it. ``alone``: no other recognition is running or waiting, so
    an engine that can compute one on more threads does (faster-whisper: ``ASR__CPU_THREADS_ALONE``)."""

    prompt: str = ""
    hotwords: str = ""
    hurry: bool = False
    alone: bool = False


@dataclass(frozen=True)
class Word:
    """A recognised word; ``start`` and ``end`` are seconds into the audio it was heard in (the listener moves them
    onto the call's stream clock), None when the engine gave no times."""

    text: str
    confidence: float
    start: float | None = None
    end: float | None = None


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

    def shifted(self, seconds: float) -> Transcript:
        """The same transcript with its words' times moved by ``seconds`` (audio heard that much into a stream)."""
        words = tuple(
            replace(w, start=w.start + seconds, end=w.end + seconds) if w.start is not None and w.end is not None else w
            for w in self.words
        )
        return replace(self, words=words)


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


@dataclass(frozen=True)
class DecodedSegment:
    """One segment as a Whisper engine decoded it, engine-neutral: text, mean token log-probability, token count,
    the no-speech probability, each word as decoded (leading space kept) with its probability, and, when the engine
    timed them, each word's start and end (seconds into the audio)."""

    text: str
    avg_logprob: float
    tokens: int
    no_speech_prob: float
    words: tuple[tuple[str, float], ...] = ()
    times: tuple[tuple[float, float], ...] = ()


# Whisper, given the quiet after a caller's last word, often goes on writing: "... a person. 1.", "... paid? Thank
# you.", "... hours? We'll see you next time." Such a tail is a sentence of its own whose first word the model itself
# barely believes (0.01-0.08 on the tests' callers), while a caller's own second sentence starts far above this.
INVENTED_TAIL_BELOW = 0.1


def _ends_sentence(word: str) -> bool:
    return word.strip().endswith((".", "?", "!"))


def invented_tail(words: list[tuple[str, float]], below: float = INVENTED_TAIL_BELOW) -> int:
    """How many of the last ``words`` (text, probability) are sentences Whisper wrote after the speech: each trailing
    sentence whose first word has probability under ``below``. The first sentence is never dropped."""
    keep = len(words)
    while keep > 0:
        start = max((i + 1 for i in range(keep - 1) if _ends_sentence(words[i][0])), default=0)
        if start == 0 or words[start][1] >= below:
            break
        keep = start
    return len(words) - keep


def _times(segment: DecodedSegment) -> list[tuple[float, float] | None]:
    """Each decoded word's (start, end), or None for every word when the engine gave no times."""
    if len(segment.times) == len(segment.words):
        return [(round(float(a), 2), round(float(b), 2)) for a, b in segment.times]
    return [None] * len(segment.words)


def whisper_transcript(
    segments: list[DecodedSegment],
    language: str,
    audio_s: float,
    alternatives: tuple[Hypothesis, ...] = (),
    tail_below: float = INVENTED_TAIL_BELOW,
) -> Transcript:
    """The transcript of a Whisper engine's segments, less any tail it invented after the speech (``invented_tail``):
    the dropped words leave the text and the confidence."""
    if not segments:
        return Transcript("", 0.0, language, audio_s, no_speech=1.0)
    timed = [(w, p, n, t) for n, s in enumerate(segments) for (w, p), t in zip(s.words, _times(s), strict=True)]
    decoded = [(w, p, n) for w, p, n, _ in timed if w.strip()]
    times = [t for w, _, _, t in timed if w.strip()]
    dropped = invented_tail([(w, p) for w, p, _ in decoded], tail_below)
    log_probs = sum(s.avg_logprob * max(1, s.tokens) for s in segments)
    tokens = sum(max(1, s.tokens) for s in segments)
    text = " ".join(s.text.strip() for s in segments).strip()
    if dropped:
        decoded, tail, times = decoded[:-dropped], decoded[-dropped:], times[:-dropped]
        # One token a word, a close enough account of what the tail added to the mean.
        log_probs -= sum(math.log(max(p, 1e-6)) for _, p, _ in tail)
        tokens = max(1, tokens - len(tail))
        text = "".join(w for w, _, _ in decoded).strip()
        segments = segments[: decoded[-1][2] + 1]
    return Transcript(
        text=text,
        confidence=round(min(1.0, math.exp(log_probs / tokens)), 3),
        language=language,
        audio_s=audio_s,
        words=tuple(
            Word(w.strip(), round(float(p), 3), *(t if t is not None else (None, None)))
            for (w, p, _), t in zip(decoded, times, strict=True)
        ),
        no_speech=round(max(s.no_speech_prob for s in segments), 3),
        alternatives=alternatives,
    )


class AsrEngine(Protocol):
    """A loaded recognizer. ``transcribe`` blocks: callers run it off the event loop (asyncio.to_thread)."""

    name: ClassVar[str]
    capabilities: ClassVar[AsrCapabilities]

    def __init__(self, settings: AsrSettings) -> None: ...

    def transcribe(self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None) -> Transcript:
        """Transcribe float32 mono audio at any sample rate, biased by ``context`` where the engine can be."""
        ...


class Recogniser(Protocol):
    """What a call needs of a recogniser: an engine loaded here, or one in a process of its own
    (voice/asr/processes.py). ``transcribe`` blocks."""

    @property
    def capabilities(self) -> AsrCapabilities: ...

    def transcribe(
        self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None
    ) -> Transcript: ...


class Recognitions(Protocol):
    """Recognitions shared by every call of a line, off the event loop (voice/asr/queue.py)."""

    def submit(
        self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None, *, speculative: bool = False
    ) -> asyncio.Future[Transcript]: ...

    def has_room(self) -> bool:
        """Whether a recognition asked now would start at once."""
        ...

    def promote(self, future: asyncio.Future[Transcript]) -> None:
        """A speculative recognition is the finished turn after all: it no longer waits behind other speculations."""
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
