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
    # Started before the line's noise floor was known, and not one frame of it stood out of the floor once it was:
    # the noise of a line at the start of the call, not a voice (see Endpointer).
    line_noise: bool = False


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


class LevelHistory:
    """The levels of the last 10 s of frames (a ring), and a percentile of them once 500 ms of them are known."""

    WINDOW_FRAMES = 10_000 // FRAME_MS
    MIN_FRAMES = 500 // FRAME_MS  # a percentile of fewer is not trusted

    def __init__(self) -> None:
        self._levels = np.zeros(self.WINDOW_FRAMES)
        self._count = 0  # levels added (the ring holds the last WINDOW_FRAMES of them)

    def add(self, level_db: float) -> None:
        self._levels[self._count % self.WINDOW_FRAMES] = level_db
        self._count += 1

    def percentile(self, q: float) -> float | None:
        """np.percentile's linear rule, from the two ranks around it (np.partition: a tenth of its time, per frame);
        None until MIN_FRAMES levels are known."""
        if self._count < self.MIN_FRAMES:
            return None
        n = min(self._count, self.WINDOW_FRAMES)
        rank = q / 100 * (n - 1)
        lo = int(rank)
        hi = min(lo + 1, n - 1)
        ranked = np.partition(self._levels[:n], (lo, hi))
        return float(ranked[lo] + (ranked[hi] - ranked[lo]) * (rank - lo))


class CallerLevel:
    """How loud the caller's own voice is on the line: the 90th percentile of the levels of the last 10 s of frames
    heard as their voice over the noise floor. Babble (other people talking near the caller) stands out of a floor as
    a voice does, but 10-20 dB under the caller's own: a frame that far under the caller's level is not them."""

    WINDOW_FRAMES = LevelHistory.WINDOW_FRAMES
    MIN_FRAMES = LevelHistory.MIN_FRAMES  # a level from less of their voice is not trusted
    PERCENTILE = 90

    def __init__(self, range_db: float):
        self._range_db = range_db
        self._history = LevelHistory()

    def is_caller(self, level_db: float) -> bool:
        """Hear a frame of voice over the floor at ``level_db``: whether it is within range of the caller's level
        (always, while too little of their voice has been heard)."""
        caller_db = self._history.percentile(self.PERCENTILE)
        self._history.add(level_db)
        return caller_db is None or level_db >= caller_db - self._range_db


class NoiseFloor:
    """The line's noise floor, to tell a caller's voice from the noise under it: the 10th percentile of the levels
    (each over the last 60 ms) of the last 10 s of frames. WebRTC VAD calls babble, street noise and hiss 10-20 dB
    under a caller's voice speech, so a noisy caller's utterance would not end while the noise goes on; their words
    stand well above the floor, the noise does not. On a quiet line (under ``QUIET_DB``; a digital one is silent
    between words) every frame counts as standing out: the detector alone decides there. Levels are dB over an rms
    of one int16 step."""

    WINDOW_FRAMES = LevelHistory.WINDOW_FRAMES
    MIN_FRAMES = LevelHistory.MIN_FRAMES  # a floor from less of the line is not trusted
    PERCENTILE = 10
    SMOOTH_FRAMES = 60 // FRAME_MS
    QUIET_DB = 30.0  # -60 dBFS: below it, the line carries no noise to tell a voice from

    def __init__(self, margin_db: float):
        self._margin_db = margin_db
        self._history = LevelHistory()  # of every frame heard
        self._powers: deque[float] = deque(maxlen=self.SMOOTH_FRAMES)
        self.level_db = 0.0  # the last frame's
        self._last_floor: float | None = None  # the floor that frame was judged by

    @property
    def floor_db(self) -> float | None:
        """The line's noise floor now, None until enough of the line has been heard."""
        return self._history.percentile(self.PERCENTILE)

    @property
    def known(self) -> bool:
        """Whether the floor was known at the last frame heard."""
        return self._last_floor is not None

    @property
    def acting(self) -> bool:
        """Whether, at the last frame heard, the floor was known and the line carried noise to tell a voice from (see
        ``stands_out``)."""
        return self._last_floor is not None and self._last_floor >= self.QUIET_DB

    def stands_out(self, pcm: np.ndarray) -> bool:
        """Hear one frame: whether it stands ``margin_db`` above the floor (always, while the floor is unknown or the
        line quiet)."""
        self._powers.append(_power(pcm))
        level = self.level_db = _level_db(sum(self._powers) / len(self._powers))
        self._history.add(level)
        floor = self._last_floor = self.floor_db
        return floor is None or floor < self.QUIET_DB or bool(level >= floor + self._margin_db)

    def any_stands_out(self, pcm: list[np.ndarray]) -> bool:
        """Whether any of these frames, heard before the floor was known, stands ``margin_db`` above it now (each
        frame's own level: the 60 ms around it are not kept)."""
        floor = self._last_floor
        if floor is None:
            return True
        need = floor + self._margin_db
        return any(_level_db(_power(frame)) >= need for frame in pcm)


def _power(pcm: np.ndarray) -> float:
    """A frame's mean power, in int16 steps squared."""
    samples = pcm.astype(np.float64)
    return float(np.dot(samples, samples)) / len(samples)


def _level_db(power: float) -> float:
    """A level in dB over an rms of one int16 step (silence: 0 dB)."""
    return float(10 * np.log10(power + 1.0))


class Endpointer:
    """Feeds 20 ms PCM16 frames through a speech detector (WebRTC VAD unless another is given) and reports utterance
    starts, pauses and ends.

    Speech starts once ``min_speech_ms`` of the last 300 ms is voiced (so single clicks do not count); it ends after
    ``end_silence_ms`` of unvoiced frames, or at ``max_utterance_s``. A short pre-roll keeps the first syllable.

    On a noisy line the detector may hear the noise as speech. With ``noise_gate_db``, a voiced frame must also stand
    that far above the line's noise floor (NoiseFloor) to start an utterance, and an utterance also ends after
    ``noise_end_ms`` without such a frame, at the last one: the soft ends of words still count as speech (the
    detector's own silence ends the utterance as before), but noise cannot hold it open. With ``caller_range_db``
    too, while the floor acts, only frames within that range of the caller's own level (CallerLevel) hold an
    utterance open: other voices near the caller (babble) stand out of the floor, but not up to the caller's.

    The floor is known only after 500 ms of the line: a noisy line's first frames start an utterance, which the noise
    rule then ends at the last of them. When not one of its frames stands out of the floor once it is known (those
    heard before it was, judged then), the utterance is marked ``line_noise``: no caller's voice was heard in it.
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
        noise_gate_db: float = 0.0,
        noise_end_ms: int = 0,
        caller_range_db: float = 0.0,
    ):
        self._detector = detector or WebRtcDetector(aggressiveness)
        self._floor = NoiseFloor(noise_gate_db) if noise_gate_db > 0 else None  # None: every frame stands out
        # None: every frame over the floor is the caller's
        self._caller = CallerLevel(caller_range_db) if caller_range_db > 0 and self._floor is not None else None
        self._noise_end_frames = noise_end_ms // FRAME_MS if self._floor is not None else 0  # 0: no such end
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
        self._quiet_run = 0  # frames since the last voiced one that stood out of the noise (at the caller's level)
        self._last_clear_ms = 0  # that frame's stream time
        self._over_known_floor = False  # a frame of the utterance under way stood out of a known floor
        self._started_ms = 0
        self._audio_started_ms = 0
        self._clock_ms = 0

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def audio_started_ms(self) -> int | None:
        """Stream time of the first sample of the utterance under way (its pre-roll included), None when none is."""
        return self._audio_started_ms if self._in_speech else None

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
        """Voiced audio (heard over the line's noise) in the utterance under way, 0 when none is: what a barge-in
        policy weighs."""
        return self._voiced_frames * FRAME_MS if self._in_speech else 0

    def reset(self) -> None:
        """Forget any partial utterance (for example audio heard while the assistant was not listening)."""
        self._window.clear()
        self._utterance = []
        self._in_speech = False
        self._silent_run = self._quiet_run = 0
        self._voiced_frames = 0
        self._over_known_floor = False

    def feed(self, pcm: np.ndarray, at_ms: int | None = None) -> list[VadEvent]:
        """Feed one 20 ms frame of 8 kHz int16 audio (``at_ms``: its stream time, if the transport has one)."""
        if len(pcm) != TELEPHONE_RATE * FRAME_MS // 1000:
            raise ValueError(f"endpointer frames must be {FRAME_MS} ms at {TELEPHONE_RATE} Hz, got {len(pcm)} samples")
        now = self._clock_ms if at_ms is None else at_ms
        self._clock_ms = now + FRAME_MS
        voiced = self._detector.is_speech(pcm)
        stands_out = self._floor is None or self._floor.stands_out(pcm)  # the floor hears every frame
        clear = voiced and stands_out  # the caller heard over the noise
        floor_known = self._floor is None or self._floor.known
        holds = clear  # the caller's own voice: it holds an utterance open
        if clear and self._caller is not None and self._floor is not None and self._floor.acting:
            holds = self._caller.is_caller(self._floor.level_db)
        if not self._in_speech:
            self._window.append((pcm, clear))
            if sum(v for _, v in self._window) < self._min_speech_frames:
                return []
            started_ms = self._first_voiced_ms()
            assert started_ms is not None  # the window holds min_speech_frames voiced frames
            self._in_speech = True
            self._utterance = [f for f, _ in self._window]
            self._voiced_frames = sum(v for _, v in self._window)
            self._started_ms = started_ms
            self._audio_started_ms = now - (len(self._window) - 1) * FRAME_MS
            self._last_voiced_ms = self._last_clear_ms = now
            self._silent_run = self._quiet_run = 0
            self._over_known_floor = clear and floor_known
            self._window.clear()
            return [SpeechStarted(self._started_ms)]
        self._utterance.append(pcm)
        if voiced:
            self._silent_run = 0
            self._last_voiced_ms = now
        else:
            self._silent_run += 1
        if clear:
            self._voiced_frames += 1  # a barge-in weighs the caller's voice, not the noise under it
            self._over_known_floor = self._over_known_floor or floor_known
        if holds:
            self._quiet_run = 0
            self._last_clear_ms = now
        else:
            self._quiet_run += 1
        too_long = len(self._utterance) >= self._max_frames
        silence_over = self._silent_run >= self._end_silence_frames
        if silence_over or too_long:
            return [self._end(self._silent_run, self._last_voiced_ms, truncated=not silence_over)]
        if self._noise_end_frames and self._quiet_run >= self._noise_end_frames:
            return [self._end(self._quiet_run, self._last_clear_ms, truncated=False)]
        if self._pause_frames and self._silent_run == self._pause_frames:
            return [self._paused(self._silent_run, self._last_voiced_ms)]
        if self._noise_end_frames and self._pause_frames == self._quiet_run > self._silent_run:
            return [self._paused(self._quiet_run, self._last_clear_ms)]  # the caller may have stopped under noise
        return []

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
        return self._end(self._silent_run, self._last_voiced_ms, truncated=False) if self._in_speech else None

    def _paused(self, run: int, last_ms: int) -> SpeechPaused:
        """The utterance so far, ended at ``last_ms``, its last frame of speech, ``run`` frames ago."""
        return SpeechPaused(self._speech_so_far(run), self._started_ms, last_ms + FRAME_MS, self._audio_started_ms)

    def _end(self, run: int, last_ms: int, truncated: bool) -> UtteranceEnded:
        floor = self._floor
        line_noise = (
            floor is not None
            and floor.acting
            and not self._over_known_floor
            and not floor.any_stands_out(self._utterance)
        )
        event = UtteranceEnded(
            self._speech_so_far(run), self._started_ms, last_ms + FRAME_MS, truncated, self._audio_started_ms,
            line_noise,
        )  # fmt: skip
        self.reset()
        return event

    def _speech_so_far(self, run: int) -> np.ndarray:
        """The utterance up to ``run`` frames ago (its last frame of speech), plus a short tail of what came after."""
        keep = len(self._utterance) - run + min(run, self.TAIL_FRAMES)
        return np.concatenate(self._utterance[:keep])
