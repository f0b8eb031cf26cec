"""Endpointing: a speech detector (WebRTC VAD, or Silero VAD: voice/silero.py) over 20 ms telephone frames, cutting
the caller's audio into utterances."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import webrtcvad

from voice.codecs import FRAME_MS, TELEPHONE_RATE


@dataclass(frozen=True)
class SpeechStarted:
    """The caller started speaking; ``at_ms`` is stream time of the first voiced frame."""

    at_ms: int


@dataclass(frozen=True)
class UtteranceEnded:
    """One complete utterance: int16 PCM at 8 kHz, with stream times of speech start and of the last voiced frame."""

    pcm: np.ndarray
    started_ms: int
    speech_end_ms: int
    truncated: bool  # cut at the maximum utterance length rather than by silence
    audio_started_ms: int  # stream time of the first sample of ``pcm`` (its pre-roll starts before the speech)


@dataclass(frozen=True)
class SpeechPaused:
    """The caller has been silent for the pause time inside an utterance: ``pcm`` is exactly what ``UtteranceEnded``
    will carry if the silence goes on to the end of the utterance, so recognition can start now (speculatively)."""

    pcm: np.ndarray
    started_ms: int
    speech_end_ms: int
    audio_started_ms: int


VadEvent = SpeechStarted | SpeechPaused | UtteranceEnded


class SpeechDetector(Protocol):
    def is_speech(self, pcm: np.ndarray) -> bool:
        """Whether this 20 ms frame (int16, 8 kHz) is the caller speaking."""
        ...


class WebRtcDetector:
    def __init__(self, aggressiveness: int):
        self._vad = webrtcvad.Vad(aggressiveness)

    def is_speech(self, pcm: np.ndarray) -> bool:
        return bool(self._vad.is_speech(pcm.astype(np.int16).tobytes(), TELEPHONE_RATE))


class Endpointer:
    """Feeds 20 ms PCM16 frames through a speech detector (WebRTC VAD unless another is given) and reports utterance
    starts, pauses and ends.

    Speech starts once ``min_speech_ms`` of the last 300 ms is voiced (so single clicks do not count); it ends after
    ``end_silence_ms`` of unvoiced frames, or at ``max_utterance_s``. A short pre-roll keeps the first syllable.
    """

    PREROLL_MS = 300

    TAIL_FRAMES = 5  # 100 ms of silence kept after the last voiced frame

    def __init__(
        self,
        aggressiveness: int,
        end_silence_ms: int,
        min_speech_ms: int,
        max_utterance_s: float,
        pause_ms: int = 0,
        detector: SpeechDetector | None = None,
    ):
        self._detector = detector or WebRtcDetector(aggressiveness)
        self._end_silence_frames = max(1, end_silence_ms // FRAME_MS)
        # 0: no SpeechPaused events. Otherwise they come after this much silence, before the utterance ends.
        self._pause_frames = pause_ms // FRAME_MS if 0 < pause_ms < end_silence_ms else 0
        self._min_speech_frames = max(1, min_speech_ms // FRAME_MS)
        self._max_frames = int(max_utterance_s * 1000 // FRAME_MS)
        self._window: deque[tuple[np.ndarray, bool]] = deque(maxlen=self.PREROLL_MS // FRAME_MS)
        self._utterance: list[np.ndarray] = []
        self._in_speech = False
        self._silent_run = 0
        self._voiced_frames = 0
        self._last_voiced_ms = 0
        self._started_ms = 0
        self._audio_started_ms = 0
        self._clock_ms = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def utterance_so_far(self) -> np.ndarray:
        """The audio of the utterance under way, pre-roll included (empty when none is)."""
        if not self._in_speech or not self._utterance:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._utterance)

    @property
    def starting(self) -> bool:
        """Voiced frames heard that may yet start an utterance (fewer than it takes so far)."""
        return self.starting_at_ms() is not None

    def starting_at_ms(self) -> int | None:
        """Stream time of the first voiced frame of speech that may yet start an utterance (see ``starting``), None
        when there is none."""
        return None if self._in_speech else self._first_voiced_ms()

    def _first_voiced_ms(self) -> int | None:
        """Stream time of the first voiced frame in the pre-roll window (the frame last fed ends at ``_clock_ms``),
        None when none is voiced."""
        first = next((i for i, (_, v) in enumerate(self._window) if v), None)
        return None if first is None else self._clock_ms - (len(self._window) - first) * FRAME_MS

    @property
    def voiced_ms(self) -> int:
        """Voiced audio in the utterance under way (0 when none is): what a barge-in policy weighs."""
        return self._voiced_frames * FRAME_MS if self._in_speech else 0

    def reset(self) -> None:
        """Forget any partial utterance (for example audio heard while the assistant was not listening)."""
        self._window.clear()
        self._utterance = []
        self._in_speech = False
        self._silent_run = 0
        self._voiced_frames = 0

    def feed(self, pcm: np.ndarray, at_ms: int | None = None) -> list[VadEvent]:
        """Feed one 20 ms frame of 8 kHz int16 audio (``at_ms``: its stream time, if the transport has one)."""
        if len(pcm) != TELEPHONE_RATE * FRAME_MS // 1000:
            raise ValueError(f"endpointer frames must be {FRAME_MS} ms at {TELEPHONE_RATE} Hz, got {len(pcm)} samples")
        now = self._clock_ms if at_ms is None else at_ms
        self._clock_ms = now + FRAME_MS
        voiced = self._detector.is_speech(pcm)
        if not self._in_speech:
            self._window.append((pcm, voiced))
            if sum(v for _, v in self._window) < self._min_speech_frames:
                return []
            started_ms = self._first_voiced_ms()
            assert started_ms is not None  # the window holds min_speech_frames voiced frames
            self._in_speech = True
            self._utterance = [f for f, _ in self._window]
            self._voiced_frames = sum(v for _, v in self._window)
            self._started_ms = started_ms
            self._audio_started_ms = now - (len(self._window) - 1) * FRAME_MS
            self._last_voiced_ms = now
            self._silent_run = 0
            self._window.clear()
            return [SpeechStarted(self._started_ms)]
        self._utterance.append(pcm)
        if voiced:
            self._silent_run = 0
            self._voiced_frames += 1
            self._last_voiced_ms = now
        else:
            self._silent_run += 1
        too_long = len(self._utterance) >= self._max_frames
        if self._silent_run < self._end_silence_frames and not too_long:
            if self._pause_frames and self._silent_run == self._pause_frames:
                return [
                    SpeechPaused(
                        self._speech_so_far(), self._started_ms, self._last_voiced_ms + FRAME_MS, self._audio_started_ms
                    )
                ]
            return []
        return [self._end(truncated=too_long and self._silent_run < self._end_silence_frames)]

    @property
    def silence_ms(self) -> int:
        """Silence since the last voiced frame of the utterance under way (0 when none is)."""
        return self._silent_run * FRAME_MS if self._in_speech else 0

    @property
    def end_silence_ms(self) -> int:
        """The silence that ends an utterance."""
        return self._end_silence_frames * FRAME_MS

    def set_end_silence(self, end_silence_ms: int) -> None:
        """Change the silence that ends an utterance (from the next frame on)."""
        self._end_silence_frames = max(1, end_silence_ms // FRAME_MS)
        if self._pause_frames >= self._end_silence_frames:
            self._pause_frames = 0

    def utterance_end_ms(self) -> int | None:
        """Stream time just after the last voiced frame of the utterance under way (None when none is)."""
        return self._last_voiced_ms + FRAME_MS if self._in_speech else None

    def end_now(self) -> UtteranceEnded | None:
        """End the utterance under way at once (another endpointer, such as the recogniser's, decided it is over)."""
        return self._end(truncated=False) if self._in_speech else None

    def _end(self, truncated: bool) -> UtteranceEnded:
        event = UtteranceEnded(
            self._speech_so_far(), self._started_ms, self._last_voiced_ms + FRAME_MS, truncated, self._audio_started_ms
        )
        self.reset()
        return event

    def _speech_so_far(self) -> np.ndarray:
        """The utterance up to its last voiced frame, plus a short tail of the silence after it."""
        keep = len(self._utterance) - self._silent_run + min(self._silent_run, self.TAIL_FRAMES)
        return np.concatenate(self._utterance[:keep])
