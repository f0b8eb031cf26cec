"""Fault drills: make the in-process speech engines fail on purpose, on a running gateway.

Rasa, the action server, the database and Twilio are other processes or hosts: their faults are rehearsed by
stopping them or closing their ports. Speech recognition and synthesis run inside the gateway, so a drill switches
them to failing at the engine's boundary, with the engine's own error, and everything after that (the apology, the
handoff to `general` with the call's context, the call record) runs as in a real fault; ``asr_stall`` makes every
recognition wait until it is disarmed, as on a line far behind its callers (the holding phrase, then a person).
Enabled only with HELPLINE_GATEWAY__FAULT_DRILLS=true, and only from the gateway's own host: POST /drills/asr arms,
DELETE disarms.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import numpy as np

from voice.asr import AsrError, Transcript
from voice.asr.base import RecognitionContext
from voice.tts import TtsError

log = logging.getLogger(__name__)

PARTS = ("asr", "tts", "asr_stall")


class Drills:
    def __init__(self) -> None:
        self._armed: set[str] = set()
        self._lock = threading.Lock()

    def arm(self, part: str) -> None:
        with self._lock:
            self._armed.add(part)
        log.warning("fault drill armed: %s fails until disarmed", part)

    def disarm(self, part: str) -> None:
        with self._lock:
            self._armed.discard(part)
        log.warning("fault drill disarmed: %s", part)

    def armed(self, part: str) -> bool:
        with self._lock:
            return part in self._armed

    @property
    def state(self) -> dict[str, bool]:
        return {part: self.armed(part) for part in PARTS}


class DrillAsr:
    """The configured ASR engine, failing while the asr drill is armed, stalled while asr_stall is."""

    def __init__(self, engine: Any, drills: Drills):
        self._engine = engine
        self._drills = drills

    def __getattr__(self, name: str) -> Any:  # capabilities, name, stream(): the engine's own
        return getattr(self._engine, name)

    def transcribe(self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None) -> Transcript:
        if self._drills.armed("asr"):
            raise AsrError("fault drill: speech recognition failing on purpose")
        while self._drills.armed("asr_stall"):  # on one of the recognition threads, never the event loop
            time.sleep(0.05)
        return self._engine.transcribe(audio, sample_rate, context)  # type: ignore[no-any-return]


class DrillTts:
    """The voice (with its own fallback), failing while the tts drill is armed, cached sentences included."""

    def __init__(self, tts: Any, drills: Drills):
        self._tts = tts
        self._drills = drills

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tts, name)

    def telephone(self, text: str) -> bytes:
        if self._drills.armed("tts"):
            raise TtsError("fault drill: speech synthesis failing on purpose")
        return self._tts.telephone(text)  # type: ignore[no-any-return]
