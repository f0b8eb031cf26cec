"""One phone call: caller audio -> VAD -> ASR -> dialogue -> TTS -> audio back, and the call's record."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from helpline.redaction import mask_phone_number, redact_text
from helpline.settings import Settings
from nlu.client import DialogueTurn, NluUnavailable, RasaClient
from telephony import prompts
from telephony.twilio_media import Start, mark_message, media_message
from voice.asr import AsrEngine, AsrError, Transcript
from voice.codecs import TELEPHONE_RATE, frames, pcm16_to_float, ulaw_decode
from voice.tts import TtsError
from voice.tts.base import split_sentences
from voice.tts.registry import FallbackTts
from voice.vad import Endpointer, UtteranceEnded

log = logging.getLogger(__name__)

SendText = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class HandoffRequested:
    """The bot part of the call ends here; an expert queue takes over with this context."""

    queue: str
    reason: str
    context: dict[str, Any]


@dataclass
class TurnRecord:
    """One caller utterance and what the assistant did with it."""

    index: int
    speech_started_ms: int
    speech_end_ms: int  # stream time of the caller's last voiced frame
    transcript: str = ""
    asr_confidence: float = 0.0
    intent: str = ""
    nlu_confidence: float = 0.0
    intent_ranking: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    decision: str = ""
    reply: str = ""
    asr_ms: float = 0.0
    nlu_ms: float = 0.0
    tts_ms: float = 0.0
    # From the endpoint decision (end of speech + configured silence) to the first reply frame sent.
    response_ms: float = 0.0
    error: str = ""


@dataclass
class CallRecord:
    call_sid: str
    stream_sid: str
    caller: str  # masked
    started_at: str
    turns: list[TurnRecord] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # everything the assistant said, in order
    outcome: str = ""
    answered_topics: list[str] = field(default_factory=list)
    handoff: HandoffRequested | None = None
    ended_at: str = ""
    malformed_messages: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "call_sid": self.call_sid,
            "stream_sid": self.stream_sid,
            "caller": self.caller,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "outcome": self.outcome,
            "answered_topics": self.answered_topics,
            "said": self.said,
            "handoff": None
            if self.handoff is None
            else {
                "queue": self.handoff.queue,
                "reason": self.handoff.reason,
                "context": self.handoff.context,
            },
            "malformed_messages": self.malformed_messages,
            "turns": [vars(t) for t in self.turns],
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class CallSession:
    """Runs one call. The gateway feeds it inbound events; it sends media/mark/clear through ``send``.

    Utterances are processed one at a time by the session's own dialogue task, so audio keeps flowing while
    the assistant thinks. Any fault (ASR, Rasa, TTS) ends in an apology and a handoff to ``general``.
    """

    def __init__(
        self,
        start: Start,
        settings: Settings,
        asr: AsrEngine,
        tts: FallbackTts,
        rasa: RasaClient,
        apology_audio: bytes,
        send: SendText,
    ):
        self._settings = settings
        self._asr = asr
        self._tts = tts
        self._rasa = rasa
        self._apology_audio = apology_audio
        self._send = send
        self.stream_sid = start.stream_sid
        self.call_sid = start.call_sid
        vad = settings.vad
        self._endpointer = Endpointer(vad.aggressiveness, vad.end_silence_ms, vad.min_speech_ms, vad.max_utterance_s)
        self._utterances: asyncio.Queue[tuple[UtteranceEnded, float]] = asyncio.Queue()
        self._pending_marks: dict[str, asyncio.Event] = {}
        self._mark_seq = 0
        self._dialogue_task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()  # set when the bot part of the call is over (hand off or goodbye)
        self.record = CallRecord(
            call_sid=start.call_sid,
            stream_sid=start.stream_sid,
            caller=mask_phone_number(start.custom_parameters.get("from", "")),
            started_at=now_iso(),
        )

    # --- lifecycle -------------------------------------------------------------------------------------------

    def begin(self) -> None:
        self._dialogue_task = asyncio.create_task(self._run(), name=f"call-{self.call_sid}")

    async def close(self, outcome_if_open: str = "abandoned") -> None:
        """The stream ended (caller hung up, or we finished). Stop work and settle the outcome."""
        if self._dialogue_task is not None:
            self._dialogue_task.cancel()
            try:
                await asyncio.wait_for(self._dialogue_task, timeout=5)
            except (asyncio.CancelledError, TimeoutError):
                pass
            except Exception:  # e.g. a send to a socket the caller already closed: the record still gets settled
                log.exception("call %s: the dialogue task failed while the call ended", self.call_sid)
        for event in self._pending_marks.values():
            event.set()
        if not self.record.outcome:
            last = self.record.answered_topics[-1] if self.record.answered_topics else None
            self.record.outcome = f"answered:{last}" if last else outcome_if_open
        self.record.ended_at = now_iso()
        self.finished.set()

    # --- inbound events --------------------------------------------------------------------------------------

    def on_audio(self, mulaw: bytes, timestamp_ms: int) -> None:
        pcm = ulaw_decode(mulaw)
        for event in self._endpointer.feed(pcm, at_ms=timestamp_ms):
            if isinstance(event, UtteranceEnded):
                self._utterances.put_nowait((event, time.perf_counter()))

    def on_mark(self, name: str) -> None:
        event = self._pending_marks.pop(name, None)
        if event is not None:
            event.set()

    def on_dtmf(self, digit: str) -> None:
        log.info("call %s: DTMF %s (keypad menu not enabled)", self.call_sid, digit)

    # --- the dialogue task -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._greet()
            while not self.finished.is_set():
                utterance, endpoint_at = await self._utterances.get()
                await self._handle_utterance(utterance, endpoint_at)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: unexpected fault", self.call_sid)
            await self._fault_handoff("unexpected fault in the call session", None)

    async def _greet(self) -> None:
        try:
            texts = await self._rasa.start_call(self.call_sid)
        except NluUnavailable as e:
            log.error("call %s: dialogue unavailable at call start: %s", self.call_sid, e)
            await self._fault_handoff("dialogue server unavailable at call start", None)
            return
        await self._speak(" ".join(texts) or prompts.FALLBACK_GREETING, mark=f"greeting-{self.call_sid}")

    async def _handle_utterance(self, utterance: UtteranceEnded, endpoint_at: float) -> None:
        turn = TurnRecord(
            index=len(self.record.turns) + 1,
            speech_started_ms=utterance.started_ms,
            speech_end_ms=utterance.speech_end_ms,
        )
        self.record.turns.append(turn)
        try:
            t0 = time.perf_counter()
            audio = pcm16_to_float(utterance.pcm)
            transcript: Transcript = await asyncio.to_thread(self._asr.transcribe, audio, TELEPHONE_RATE)
            turn.asr_ms = (time.perf_counter() - t0) * 1000
        except AsrError as e:
            log.error("call %s: ASR failed: %s", self.call_sid, e)
            turn.error = f"asr: {e}"
            await self._fault_handoff("speech recognition failed", turn)
            return
        # What we keep is redacted; Rasa gets the words as heard (its extractor needs the number, and its
        # tracker store redacts before writing).
        turn.transcript, turn.asr_confidence = redact_text(transcript.text), transcript.confidence
        if transcript.is_empty:
            log.info("call %s: turn %d: no words recognised; waiting for more", self.call_sid, turn.index)
            turn.decision = "none"
            return
        metadata = {
            "channel": "twilio_voice",
            "call_sid": self.call_sid,
            "stream_sid": self.stream_sid,
            "caller": self.record.caller,
            "turn": turn.index,
            "asr": {"engine": self._settings.asr.engine, "confidence": transcript.confidence},
        }
        try:
            result: DialogueTurn = await self._rasa.respond(transcript.text, self.call_sid, metadata)
        except NluUnavailable as e:
            log.error("call %s: dialogue failed: %s", self.call_sid, e)
            turn.error = f"nlu: {e}"
            await self._fault_handoff("dialogue server unavailable", turn)
            return
        turn.nlu_ms = result.latency_ms
        turn.intent, turn.nlu_confidence = result.intent, result.confidence
        turn.intent_ranking = [{"name": n, "confidence": round(c, 4)} for n, c in result.intent_ranking[:5]]
        turn.entities = list(result.entities)
        turn.decision, turn.reply = result.decision, result.reply
        log.info(
            "call %s: turn %d: intent=%s (%.2f) decision=%s",
            self.call_sid,
            turn.index,
            result.intent,
            result.confidence,
            result.decision,
        )
        if result.decision_kind == "answer":
            self.record.answered_topics.append(result.decision_target)
        await self._speak(result.reply, mark=f"turn-{turn.index}", turn=turn, endpoint_at=endpoint_at)
        if result.decision_kind == "route":
            self._hand_off(result.decision_target, str(result.details.get("reason") or result.intent), turn)
        elif result.decision == "smalltalk:goodbye":
            self.finished.set()

    # --- speaking --------------------------------------------------------------------------------------------

    async def _speak(
        self, text: str, mark: str, turn: TurnRecord | None = None, endpoint_at: float | None = None
    ) -> None:
        """Synthesise ``text`` sentence by sentence, sending each as soon as it is ready (the first sentence
        plays while the rest is synthesised), then wait until Twilio reports it all played (the mark comes back)."""
        sentences = split_sentences(text)
        if not sentences:
            return
        played = asyncio.Event()
        self._pending_marks[mark] = played
        first_frame_sent = False
        for sentence in sentences:
            t0 = time.perf_counter()
            try:
                speech = await asyncio.to_thread(self._tts.synthesize, sentence)
                audio = speech.to_telephone()
            except TtsError as e:
                log.error("call %s: every TTS engine failed: %s", self.call_sid, e)
                self._pending_marks.pop(mark, None)
                if turn is not None:
                    turn.error = f"tts: {e}"
                await self._fault_handoff("speech synthesis failed", turn)
                return
            if turn is not None:
                turn.tts_ms += (time.perf_counter() - t0) * 1000
            for frame in frames(audio):
                await self._send(media_message(self.stream_sid, frame))
                if not first_frame_sent and turn is not None and endpoint_at is not None:
                    turn.response_ms = round((time.perf_counter() - endpoint_at) * 1000, 1)
                first_frame_sent = True
        await self._send(mark_message(self.stream_sid, mark))
        self.record.said.append(text)
        await played.wait()

    async def _play(self, mulaw: bytes, mark: str) -> None:
        """Send ready audio, then wait until it played."""
        played = asyncio.Event()
        self._pending_marks[mark] = played
        for frame in frames(mulaw):
            await self._send(media_message(self.stream_sid, frame))
        await self._send(mark_message(self.stream_sid, mark))
        await played.wait()

    # --- ending the bot part ---------------------------------------------------------------------------------

    def _hand_off(self, queue: str, reason: str, turn: TurnRecord | None) -> None:
        context = {
            "call_id": self.call_sid,
            "caller": self.record.caller,
            "queue": queue,
            "reason": reason,
            "transcript": [
                {"turn": t.index, "text": t.transcript, "asr_confidence": t.asr_confidence} for t in self.record.turns
            ],
            "intent_ranking": turn.intent_ranking if turn else [],
            "entities": turn.entities if turn else [],
            "assistant_said": list(self.record.said),
        }
        self.record.handoff = HandoffRequested(queue=queue, reason=reason, context=context)
        self.record.outcome = f"routed:{queue}"
        log.info("call %s: handed off to queue %s (%s)", self.call_sid, queue, reason)
        self.finished.set()

    async def _fault_handoff(self, reason: str, turn: TurnRecord | None) -> None:
        """Never leave the caller in silence: apologise (pre-synthesised audio) and route to a person."""
        if self.finished.is_set():
            return
        self._mark_seq += 1
        await self._play(self._apology_audio, mark=f"apology-{self._mark_seq}")
        self.record.said.append(prompts.APOLOGY)
        self._hand_off("general", reason, turn)
        self.record.outcome = "failed"
