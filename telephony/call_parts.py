"""What every call of a line shares: the engines, by their Protocols, and the settings sections a call reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from foundation.language import Language
from foundation.settings import EndOfTurnSettings, TurnTakingSettings, VadSettings
from nlu.asr_context import AsrVocabulary
from nlu.dialogue import Dialogue
from telephony.routing import KeypadMenu
from voice.asr.base import Recogniser, Recognitions
from voice.end_of_turn.base import EndOfTurn
from voice.tts.base import TelephoneVoice
from voice.vad import SpeechDetector


@dataclass(frozen=True)
class ReadyAudio:
    """Prompts synthesised when the line starts: a fault of the voice itself still gets its apology, and a line too
    busy to synthesise in time still tells a waiting caller what is happening."""

    apology: bytes
    holding: bytes  # "One moment, please."
    too_slow: bytes  # no reply in time: the caller is put through to a person


@dataclass(frozen=True)
class CallParts:
    asr: Recogniser
    asr_engine: str  # its registry name, told to the dialogue with every transcript
    voice: TelephoneVoice
    dialogue: Dialogue
    ready: ReadyAudio  # what is said without synthesis at the time
    spoken: Language  # what the line says, in its language
    vad: VadSettings
    turn_taking: TurnTakingSettings
    keypad: KeypadMenu | None = None  # None: the keypad menu is off
    smalltalk: frozenset[str] = frozenset()  # intents not worth reading back when heard uncertainly
    recognition: AsrVocabulary | None = None  # the domain's words for the recogniser (contextual biasing)
    repair: AsrVocabulary | None = None  # the domain's words put right in transcripts where nearly heard
    end_of_turn: EndOfTurn | None = None  # None: a turn ends after the VAD's fixed silence
    end_of_turn_settings: EndOfTurnSettings = field(default_factory=EndOfTurnSettings)
    speech_detector: Callable[[], SpeechDetector] | None = None  # one per call; None: WebRTC VAD
    recognitions: Recognitions | None = None  # the line's recognition queue; None: asyncio's default thread pool
    recording: bool = False  # calls are recorded (RECORDING__ENABLED): the greeting says so
