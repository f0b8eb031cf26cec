"""Fakes for the call session's ports: the caller's line, speech recognition, the dialogue and the voice.

They let a test drive a real ``CallSession`` by stream time, 20 ms at a time, with no model, server or socket: the
session's own VAD hears real recorded speech; what the recogniser "heard" and what the dialogue decides are scripted.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from foundation.settings import AsrSettings, Settings
from foundation.vocabulary import Decision
from nlu.dialogue import DialogueTurn, NluUnavailable
from telephony.call_parts import CallParts, ReadyAudio
from telephony.line import line_vocabulary
from telephony.session import CallSession
from telephony.transport import CallStart, ends_prompt
from voice.asr.base import AsrCapabilities, AsrError, RecognitionContext, Transcript
from voice.codecs import TELEPHONE_RATE, float_to_pcm16, ulaw_encode
from voice.end_of_turn import EndOfTurnError

FRAME_BYTES = 160  # 20 ms of 8 kHz mu-law
SILENCE = b"\xff" * FRAME_BYTES  # mu-law of 0


@dataclass
class FakeTransport:
    """Twilio's side of the stream: a playback buffer that plays 20 ms per inbound frame and echoes each mark once
    the audio before it has played; a clear drops the buffered audio and returns the marks it held."""

    buffer: list[bytes | str] = field(default_factory=list)
    played_ms: int = 0
    clears: int = 0
    marks_echoed: list[str] = field(default_factory=list)
    to_echo: list[str] = field(default_factory=list)

    async def send_audio(self, mulaw: bytes) -> None:
        self.buffer += [mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES)]

    async def send_mark(self, name: str) -> None:
        self.buffer.append(name)

    async def clear(self) -> None:
        self.clears += 1
        self.to_echo += [item for item in self.buffer if isinstance(item, str)]
        self.buffer = []

    def play_frame(self) -> None:
        """20 ms of playback: marks at the head of the buffer are echoed, then one audio frame plays."""
        while self.buffer and isinstance(self.buffer[0], str):
            self.to_echo.append(self.buffer.pop(0))  # type: ignore[arg-type]
        if self.buffer:
            self.buffer.pop(0)
            self.played_ms += 20
        while self.buffer and isinstance(self.buffer[0], str):
            self.to_echo.append(self.buffer.pop(0))  # type: ignore[arg-type]

    @property
    def playing(self) -> bool:
        return any(isinstance(item, bytes) for item in self.buffer)


class FakeAsr:
    """A recogniser that "hears" what the test says the caller is saying: ``hearing(seconds of audio)`` -> text."""

    name: ClassVar[str] = "fake"
    capabilities: ClassVar[AsrCapabilities] = AsrCapabilities(
        streaming_partials=False, word_confidences=False, languages=("en",)
    )

    def __init__(self, settings: AsrSettings | None = None) -> None:
        self.hearing: Callable[[float], str] = lambda seconds: ""
        self.confidence = 0.95
        self.fail = False
        self.calls = 0
        self.released = threading.Event()  # cleared: recognitions wait (the recogniser is slow) until it is set
        self.released.set()

    def transcribe(self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None) -> Transcript:
        self.calls += 1
        if not self.released.wait(timeout=60):
            raise AsrError("the test never let the recognition finish")
        if self.fail:
            raise AsrError("the recogniser failed (a test fault)")
        seconds = len(audio) / sample_rate
        text = self.hearing(seconds)
        return Transcript(text=text, confidence=self.confidence if text else 0.0, language="en", audio_s=seconds)


class FakeEndOfTurn:
    """An end-of-turn model whose judgement the test sets: ``probability`` for every pause, or a fault."""

    name: ClassVar[str] = "fake"

    def __init__(self, probability: float = 0.0) -> None:
        self.probability = probability
        self.fail = False
        self.asked: list[float] = []  # seconds of audio heard at each pause
        self.heard: list[np.ndarray] = []  # that audio

    def complete(self, pcm: np.ndarray) -> float:
        self.asked.append(len(pcm) / TELEPHONE_RATE)
        self.heard.append(pcm.copy())
        if self.fail:
            raise EndOfTurnError("the end-of-turn model failed (a test fault)")
        return self.probability


@dataclass
class Reply:
    """What the scripted dialogue does with one text: its intent, decision and reply."""

    intent: str
    decision: str
    reply: str
    confidence: float = 0.95


class ScriptedDialogue:
    """The dialogue port with a script: text -> Reply; anything else is not understood."""

    greeting = ["Hello, you are talking to an automated assistant.", "How can I help you?"]

    def __init__(self, script: dict[str, Reply]):
        self.script = script
        self.respond_texts: list[str] = []
        self.taken_back: list[str] = []  # the texts whose turn the call took back (the dialogue forgot them)
        self.languages: list[str] = []  # the language each conversation was opened in
        self.fail_respond = False
        self.released = asyncio.Event()  # cleared: turns wait (the dialogue server is slow) until it is set
        self.released.set()

    def _reply(self, text: str) -> Reply:
        key = text.strip().lower().rstrip(".?!")
        return self.script.get(key, Reply("nlu_fallback", "clarify:rephrase", "Sorry, I didn't quite understand.", 0.3))

    async def start_call(self, sender_id: str, language: str = "en") -> list[str]:
        self.languages.append(language)
        return list(self.greeting)

    async def parse(self, text: str) -> tuple[str, float]:
        reply = self._reply(text)
        return reply.intent, reply.confidence

    async def respond(self, text: str, sender_id: str, metadata: dict[str, Any]) -> DialogueTurn:
        self.respond_texts.append(text)
        await self.released.wait()
        if self.fail_respond:
            raise NluUnavailable("the dialogue server is down (a test fault)")
        reply = self._reply(text)
        return DialogueTurn(
            text=text,
            intent=reply.intent,
            confidence=reply.confidence,
            intent_ranking=((reply.intent, reply.confidence),),
            entities=(),
            replies=(reply.reply,),
            decision=Decision.parse(reply.decision),
            details={"decision": reply.decision},  # as an action's message carries it
        )

    async def take_back(self, sender_id: str) -> None:
        if self.fail_respond:
            raise NluUnavailable("the dialogue server is down (a test fault)")
        self.taken_back.append(self.respond_texts[-1])


class FakeVoice:
    """Synthesis as silence: 100 ms per word, so a prompt's length follows its text."""

    def __init__(self) -> None:
        self.said: list[str] = []

    def telephone(self, text: str) -> bytes:
        self.said.append(text)
        return SILENCE * (5 * max(1, len(text.split())))


def telephone_frames(audio: np.ndarray) -> list[bytes]:
    """Float32 8 kHz audio as the 20 ms mu-law frames a caller's phone sends."""
    mulaw = ulaw_encode(float_to_pcm16(audio))
    mulaw += SILENCE[: (-len(mulaw)) % FRAME_BYTES]
    return [mulaw[i : i + FRAME_BYTES] for i in range(0, len(mulaw), FRAME_BYTES)]


class FakeCall:
    """One call: a real CallSession on the fakes, driven 20 ms at a time in stream time."""

    def __init__(
        self,
        dialogue: ScriptedDialogue,
        settings: Settings | None = None,
        keypad: Any = None,
        end_of_turn: FakeEndOfTurn | None = None,
        voice: FakeVoice | None = None,
    ):
        self.settings = settings or Settings()
        self.transport = FakeTransport()
        self.asr = FakeAsr()
        self.voice = voice or FakeVoice()
        self.dialogue = dialogue
        self.turns: list[Any] = []
        self.session = CallSession(
            CallStart("CA" + "0" * 32, "MZ" + "0" * 32, "+46701234567"),
            CallParts(
                asr=self.asr,
                asr_engine="fake",
                voice=self.voice,
                dialogue=dialogue,
                ready=ReadyAudio(apology=b"\xff" * 800, holding=b"\xfe" * 320, too_slow=b"\xfd" * 800),
                spoken=self.settings.spoken,
                vad=self.settings.vad,
                turn_taking=self.settings.turn_taking,
                keypad=keypad if self.settings.turn_taking.keypad else None,
                smalltalk=frozenset({"greet", "goodbye", "thanks", "affirm", "deny", "repeat", "bot_challenge"}),
                repair=line_vocabulary(self.settings) if self.settings.asr.key_word_repair else None,
                end_of_turn=end_of_turn,
                end_of_turn_settings=self.settings.end_of_turn,
                recording=self.settings.recording.enabled,
            ),
            self.transport,
            on_turn=lambda sid, turn: self.turns.append(turn),
        )
        self.ms = 0

    async def __aenter__(self) -> FakeCall:
        self.session.begin()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.close()

    async def frame(self, mulaw: bytes = SILENCE) -> None:
        """20 ms: the caller's frame in, 20 ms of the assistant's audio played, marks echoed; then the session's
        tasks (and the fakes' worker threads) get to run."""
        self.session.on_audio(mulaw, self.ms)
        self.ms += 20
        self.transport.play_frame()
        echoes, self.transport.to_echo = self.transport.to_echo, []
        for name in echoes:
            self.transport.marks_echoed.append(name)
            self.session.on_mark(name)
        for _ in range(3):
            await asyncio.sleep(0)
        await asyncio.sleep(0.001)  # a fake recognition or synthesis runs in a worker thread

    async def caller_says(self, text: str, frames: list[bytes], confidence: float = 0.95) -> None:
        """The caller speaks ``frames``, which the recogniser hears as ``text`` with ``confidence``."""
        self.asr.confidence = confidence
        self.asr.hearing = lambda seconds: text
        await self.say(frames)

    async def say(self, frames: list[bytes]) -> None:
        for f in frames:
            await self.frame(f)

    async def silence(self, seconds: float) -> None:
        for _ in range(round(seconds * 50)):
            await self.frame()

    async def until(self, condition: Callable[[], bool], max_s: float = 30.0) -> None:
        """Silence from the caller until ``condition`` holds (at most ``max_s`` of stream time)."""
        for _ in range(round(max_s * 50)):
            if condition():
                return
            await self.frame()
        raise AssertionError(f"not reached in {max_s} s of stream time: {self.session.record.as_dict()}")

    async def meanwhile(self, condition: Callable[[], bool], max_wall_s: float = 30.0) -> None:
        """Wait, with no stream time passing (no frame in or out), until ``condition`` holds: what the session's
        tasks and the fakes' worker threads do between two frames."""
        for _ in range(round(max_wall_s * 100)):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"not reached between two frames: {self.session.record.as_dict()}")

    async def reply(self, max_s: float = 30.0) -> None:
        """Silence from the caller until the assistant has said a whole prompt more (its last mark echoed) and has
        nothing more buffered: it is listening."""
        before = self.prompts_heard()
        await self.until(lambda: self.prompts_heard() > before and not self.transport.buffer, max_s)
        await self.silence(0.1)

    def prompts_heard(self) -> int:
        """Prompts the caller heard whole; the holding phrase ("One moment, please.") is none."""
        return sum(1 for m in self.transport.marks_echoed if ends_prompt(m))

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.session.record.events if e["kind"] == kind]


def seconds_of(frames: list[bytes]) -> float:
    return len(frames) * FRAME_BYTES / TELEPHONE_RATE
