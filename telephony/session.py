"""One phone call: caller audio -> VAD -> ASR -> dialogue -> TTS -> audio back, and the call's record.

Turn-taking is the session's own business, so it works whatever the dialogue server does:
- barge-in: speech over an interruptible prompt stops it at once (Twilio ``clear``); per-sentence marks tell what the
  caller really heard; listening noises ("mm", "yeah") said over a prompt are not a turn, and a prompt they stopped
  carries on where it was cut;
- no input: a reprompt, then the keypad menu, then a person;
- the keypad menu at any time (a key is handled as the intent it stands for);
- a transcript the recogniser is unsure of is read back ("Did you say ...?") before the assistant acts on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from foundation.redaction import mask_phone_number, redact_text
from foundation.settings import Settings
from foundation.vocabulary import FALLBACK_QUEUE, GOODBYE, READ_BACK, READ_BACK_DENIED
from nlu.asr_context import AsrVocabulary
from nlu.dialogue import Dialogue, DialogueTurn, NluUnavailable
from telephony import prompts
from telephony.guards import heard_noise
from telephony.routing import KeypadMenu
from telephony.transport import FINAL_MARK_SUFFIX, CallStart, CallTransport
from voice.asr.base import (
    AsrEngine,
    AsrError,
    RecognitionContext,
    StreamingAsrEngine,
    Transcript,
    TranscriptStream,
    join_transcripts,
)
from voice.codecs import TELEPHONE_RATE, frames, pcm16_to_float, ulaw_decode
from voice.tts.base import TelephoneVoice, TtsError, split_sentences
from voice.vad import Endpointer, SpeechPaused, SpeechStarted, UtteranceEnded

log = logging.getLogger(__name__)

MAX_PENDING_KEYS = 2  # keys waiting behind the turn in progress; more are a flood (dropped, counted)
# With a streaming recogniser, an utterance ends before the VAD's end silence once the line has been silent for half
# of it and the recogniser is done: its own endpointer closed the segment, or its words stopped changing for this many
# chunks (of 100 ms).
STREAM_STABLE_CHUNKS = 3


def stream_says_done(
    words: str, segment_closed: bool, stable_chunks: int, silence_ms: int, end_silence_ms: int
) -> bool:
    """Endpointing from partial results: the caller has stopped and the recogniser has nothing more to add."""
    if silence_ms < end_silence_ms // 2 or not words:
        return False
    return (
        segment_closed or stable_chunks >= STREAM_STABLE_CHUNKS
    )  # beyond this, key presses are dropped (a flood must not queue minutes of work)


@dataclass(frozen=True)
class HandoffRequested:
    """The bot part of the call ends here; an expert queue takes over (the gateway builds the packet and moves the
    call)."""

    queue: str
    reason: str
    turn: int | None  # the turn whose decision routed the call; None when no input or a fault did
    fault: bool  # a fault of ours routed the call, not the caller's request
    at: str


@dataclass
class TurnRecord:
    """One caller turn (spoken, or a key press) and what the assistant did with it."""

    index: int
    speech_started_ms: int
    speech_end_ms: int  # stream time of the caller's last voiced frame (of the key press for keypad turns)
    input: str = "speech"  # "speech" | "keypad"
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
    barged_in: bool = False  # this turn's speech stopped the assistant mid-prompt
    confirms_turn: int | None = None  # the caller confirmed that earlier turn's transcript; it was acted on here
    interrupted: dict[str, Any] | None = None  # this turn's reply was cut short: what the caller heard of it
    error: str = ""


@dataclass
class CallRecord:
    call_sid: str
    stream_sid: str
    caller: str  # masked
    started_at: str
    turns: list[TurnRecord] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # everything the caller heard the assistant say, in order
    events: list[dict[str, Any]] = field(default_factory=list)  # turn-taking: barge-ins, no-input, keys ...
    outcome: str = ""
    answered_topics: list[str] = field(default_factory=list)
    handoff: HandoffRequested | None = None
    farewell: bool = False  # the bot part ended with the caller's goodbye (the call can be hung up)
    packet: dict[str, Any] | None = None  # the handoff packet, once the gateway has built it
    delivery: str = ""  # how the call reached its queue: queue | fallback | caller_gone | failed
    ended_at: str = ""
    malformed_messages: int = 0
    speculations_started: int = 0  # recognitions started at a pause in the caller's speech ...
    speculations_used: int = 0  # ... and those whose pause was the end of the utterance
    stream_endpoints: int = 0  # utterances ended by the streaming recogniser before the VAD's silence ran out

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
            "events": self.events,
            "handoff": None if self.handoff is None else vars(self.handoff),
            "farewell": self.farewell,
            "packet": self.packet,
            "delivery": self.delivery,
            "malformed_messages": self.malformed_messages,
            "speculations": {"started": self.speculations_started, "used": self.speculations_used},
            "stream_endpoints": self.stream_endpoints,
            "turns": [vars(t) for t in self.turns],
        }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Prompt:
    """One thing the assistant says, as Twilio plays it. Each sentence is followed by a mark; a mark that comes back
    before any ``clear`` means the caller heard that sentence whole."""

    kind: str
    sentences: list[str]
    interruptible: bool
    protected: int = 0  # sentences that must be heard before barge-in is allowed (the greeting's disclosure)
    turn: TurnRecord | None = None
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    sentence_ms: list[int] = field(default_factory=list)  # audio length of each sentence sent
    heard: int = 0  # sentences played whole
    final_mark: str | None = None
    started_ms: int | None = None  # stream time the first frame was sent
    last_mark_ms: int | None = None  # stream time the latest mark came back
    interrupted: dict[str, Any] | None = None

    @property
    def playing(self) -> bool:
        return self.started_ms is not None and not self.finished.is_set()

    def may_barge_in(self) -> bool:
        return self.interruptible and self.playing and self.interrupted is None and self.heard >= self.protected

    @property
    def heard_text(self) -> str:
        return " ".join(self.sentences[: self.heard])

    @property
    def unheard_text(self) -> str:
        return " ".join(self.sentences[self.heard :])


@dataclass(frozen=True)
class SpeechInput:
    utterance: UtteranceEnded
    endpoint_at: float  # perf_counter() when the endpointer decided the utterance was over
    over: Prompt | None  # the prompt that was playing when the caller started speaking
    barged_in: bool  # the caller's speech stopped that prompt
    transcript: asyncio.Future[Transcript] | None = None  # recognition started at the pause before the end
    over_sentence: int = 0  # the sentence of that prompt that was playing when the caller started


@dataclass(frozen=True)
class KeyInput:
    key: str
    at_ms: int
    at: float


@dataclass(frozen=True)
class NoInput:
    since_ms: int


CallerInput = SpeechInput | KeyInput | NoInput


class CallSession:
    """Runs one call. The line feeds it inbound events; it plays audio, marks and clears through ``transport``.

    Inputs (utterances, key presses, no-input timeouts) are handled one at a time by the session's own dialogue task,
    so audio keeps flowing while the assistant thinks. Any fault (ASR, Rasa, TTS) ends in an apology and a handoff to
    ``general``.
    """

    def __init__(
        self,
        call: CallStart,
        settings: Settings,
        asr: AsrEngine,
        tts: TelephoneVoice,
        rasa: Dialogue,
        apology_audio: bytes,
        transport: CallTransport,
        keypad: KeypadMenu | None = None,
        smalltalk: frozenset[str] = frozenset(),
        on_turn: Callable[[str, TurnRecord], None] | None = None,
        recognition: AsrVocabulary | None = None,
    ):
        self._settings = settings
        self._on_turn = on_turn  # told of each turn once decided (the gateway writes it to the store at once)
        self._policy = settings.turn_taking
        self._asr = asr
        self._tts = tts
        self._rasa = rasa
        self._apology_audio = apology_audio
        self._transport = transport
        self._send_lock = asyncio.Lock()
        self._keypad = keypad if settings.turn_taking.keypad else None
        self._smalltalk = smalltalk
        self._recognition = recognition  # the domain's words for the recogniser, and the question being answered
        self._last_question: str | None = None
        self._backchannels = frozenset(w.lower() for w in settings.turn_taking.backchannels)
        self.stream_sid = call.stream_sid
        self.call_sid = call.call_sid
        vad = settings.vad
        self._endpointer = Endpointer(
            vad.aggressiveness, vad.end_silence_ms, vad.min_speech_ms, vad.max_utterance_s, vad.speculate_after_ms
        )
        self._speculation: tuple[tuple[int, int, int], asyncio.Future[Transcript]] | None = None
        # Engines with partial results recognise while the caller speaks (no speculation needed then).
        self._streaming: StreamingAsrEngine | None = asr if asr.capabilities.streaming_partials else None  # type: ignore[assignment]
        self._stream: TranscriptStream | None = None
        self._stream_fed: asyncio.Future[None] | None = None  # the last chunk handed to the stream
        self._stream_pending: list[np.ndarray] = []
        self._last_partial = ""
        self._stable_chunks = 0  # chunks fed since the partial result last changed
        self._inputs: asyncio.Queue[CallerInput] = asyncio.Queue()
        self._marks: dict[str, tuple[Prompt, int]] = {}
        self._prompt_seq = 0
        self._prompt: Prompt | None = None  # what the assistant is saying now
        self._speech_over: Prompt | None = None  # the prompt the current utterance started over
        self._speech_over_sentence = 0  # ... and which of its sentences was playing then
        self._barged_in = False
        self._stream_ms = 0
        self._listening_since_ms: int | None = None
        self._no_inputs = 0
        self._unconfirmed: tuple[str, TurnRecord] | None = None  # transcript read back, awaiting yes or no
        # Pieces of a turn longer than the longest utterance the line takes, held until the caller pauses.
        self._held: list[tuple[Transcript, SpeechInput]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._dialogue_task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()  # set when the bot part of the call is over (hand off or goodbye)
        self.record = CallRecord(
            call_sid=call.call_sid,
            stream_sid=call.stream_sid,
            caller=mask_phone_number(call.caller_number),
            started_at=now_iso(),
        )

    # --- lifecycle -------------------------------------------------------------------------------------------

    def begin(self) -> None:
        self._dialogue_task = asyncio.create_task(self._run(), name=f"call-{self.call_sid}")

    async def close(self, outcome_if_open: str = "abandoned") -> None:
        """The stream ended (caller hung up, or we finished). Stop work and settle the outcome."""
        for task in [self._dialogue_task, *self._background]:
            if task is None:
                continue
            task.cancel()
            try:
                await asyncio.wait_for(task, timeout=5)
            except (asyncio.CancelledError, TimeoutError):
                pass
            except Exception:  # e.g. a send to a socket the caller already closed: the record still gets settled
                log.exception("call %s: a task failed while the call ended", self.call_sid)
        for prompt, _ in self._marks.values():
            prompt.finished.set()
        if not self.record.outcome:
            last = self.record.answered_topics[-1] if self.record.answered_topics else None
            self.record.outcome = f"answered:{last}" if last else outcome_if_open
        self.record.ended_at = now_iso()
        self.finished.set()

    def _event(self, kind: str, **details: Any) -> None:
        self.record.events.append({"at_ms": self._stream_ms, "kind": kind, **details})

    def note(self, kind: str, **details: Any) -> None:
        """An event of the call seen by the gateway rather than the session (e.g. the stream going silent)."""
        self._event(kind, **details)

    # --- inbound events (called by the gateway's reader; never block) ----------------------------------------

    def on_audio(self, mulaw: bytes, timestamp_ms: int) -> None:
        self._stream_ms = timestamp_ms
        pcm = ulaw_decode(mulaw)
        started = False
        for event in self._endpointer.feed(pcm, at_ms=timestamp_ms):
            if isinstance(event, SpeechStarted):
                self._speech_over = self._prompt if self._prompt is not None and self._prompt.playing else None
                self._speech_over_sentence = self._speech_over.heard if self._speech_over is not None else 0
                self._barged_in = False
                self._listening_since_ms = None
                if self._streaming is not None:
                    self._stream = self._streaming.stream(TELEPHONE_RATE)
                    self._stream_fed, self._last_partial, self._stable_chunks = None, "", 0
                    self._stream_pending = [self._endpointer.utterance_so_far()]  # this frame included
                    started = True
            elif isinstance(event, SpeechPaused):
                if self._streaming is None:
                    self._speculate(event)
            elif isinstance(event, UtteranceEnded):
                self._utterance_ended(event)
        if self._stream is not None and self._endpointer.in_speech and not started:
            self._stream_pending.append(pcm)
            if sum(len(c) for c in self._stream_pending) >= TELEPHONE_RATE // 10:  # 100 ms at a time
                self._stream_feed()
        if self._endpointer.in_speech:
            if self._endpointer.voiced_ms >= self._policy.barge_in_min_speech_ms:
                self._barge_in(by="speech_ms")
        elif (
            self._listening_since_ms is not None
            and timestamp_ms - self._listening_since_ms >= self._policy.no_input_timeout_s * 1000
        ):
            self._inputs.put_nowait(NoInput(self._listening_since_ms))
            self._listening_since_ms = None

    def _utterance_ended(self, event: UtteranceEnded) -> None:
        transcript = self._stream_final() if self._stream is not None else self._speculated(event)
        self._inputs.put_nowait(
            SpeechInput(
                event, time.perf_counter(), self._speech_over, self._barged_in, transcript, self._speech_over_sentence
            )
        )
        self._speech_over, self._barged_in = None, False

    def _stream_feed(self) -> None:
        """Hand the audio gathered since the last chunk to the streaming recogniser, in order, off the event loop."""
        stream, previous = self._stream, self._stream_fed
        chunk = np.concatenate(self._stream_pending)
        self._stream_pending = []
        assert stream is not None

        async def feed() -> None:
            if previous is not None:
                await previous
            words = await asyncio.to_thread(stream.accept, chunk)
            if stream is self._stream:
                self._on_partial(words)
                self._stable_chunks = self._stable_chunks + 1 if words == self._last_partial else 0
                self._last_partial = words
                silence, end_silence = self._endpointer.silence_ms, self._settings.vad.end_silence_ms
                if stream_says_done(words, stream.segment_closed, self._stable_chunks, silence, end_silence):
                    ended = self._endpointer.end_now()
                    if ended is not None:
                        self.record.stream_endpoints += 1
                        self._utterance_ended(ended)

        self._stream_fed = asyncio.ensure_future(feed())

    def _stream_final(self) -> asyncio.Future[Transcript]:
        """The streaming recogniser's final result for the utterance that just ended."""
        if self._stream_pending:
            self._stream_feed()
        stream, fed = self._stream, self._stream_fed
        self._stream, self._stream_fed = None, None
        assert stream is not None

        async def final() -> Transcript:
            if fed is not None:
                await fed
            return await asyncio.to_thread(stream.finish)

        future = asyncio.ensure_future(final())
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # a failure is met when it is used
        return future

    def _on_partial(self, words: str) -> None:
        """Real words over an interruptible prompt stop it, before the speech-length rule would."""
        real_words = sum(1 for w in words.split() if not self._is_backchannel(w))
        log.debug("call %s: partial %r (%d words)", self.call_sid, words, real_words)
        if real_words >= self._policy.barge_in_min_words:
            self._barge_in(by="words")

    def _barge_in(self, by: str) -> None:
        """The caller's speech stops the prompt it started over, if that prompt may be interrupted now."""
        prompt = self._prompt
        if self._policy.barge_in and prompt is not None and prompt is self._speech_over and prompt.may_barge_in():
            self._barged_in = True
            self._interrupt(prompt, cause="speech", by=by)

    def _asr_context(self) -> RecognitionContext | None:
        """The recogniser's bias for the next utterance: the domain's words, then the question it may answer."""
        return self._recognition.context(self._last_question) if self._recognition is not None else None

    def _speculate(self, pause: SpeechPaused) -> None:
        """Start recognising what was said so far; the end of the utterance may well be this pause."""
        future = asyncio.ensure_future(
            asyncio.to_thread(self._asr.transcribe, pcm16_to_float(pause.pcm), TELEPHONE_RATE, self._asr_context())
        )
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # a failure is met when it is used
        self._speculation = ((pause.started_ms, pause.speech_end_ms, len(pause.pcm)), future)
        self.record.speculations_started += 1

    def _speculated(self, utterance: UtteranceEnded) -> asyncio.Future[Transcript] | None:
        """The speculative recognition of exactly this utterance, if one was started (the caller did not go on)."""
        speculation, self._speculation = self._speculation, None
        if speculation is None:
            return None
        key, future = speculation
        if key != (utterance.started_ms, utterance.speech_end_ms, len(utterance.pcm)):
            return None  # the caller spoke again after the pause: that work is wasted
        self.record.speculations_used += 1
        return future

    def on_mark(self, name: str) -> None:
        entry = self._marks.pop(name, None)
        if entry is None:
            return
        prompt, index = entry
        if prompt.interrupted is None:  # marks Twilio returns after a clear were not heard
            prompt.heard = max(prompt.heard, index + 1)
            prompt.last_mark_ms = self._stream_ms
        if name == prompt.final_mark:
            prompt.finished.set()

    def on_dtmf(self, digit: str) -> None:
        if self._keypad is None:
            log.info("call %s: key %s ignored (keypad menu disabled)", self.call_sid, digit)
            return
        if self._inputs.qsize() >= MAX_PENDING_KEYS:  # a flood: one event per burst, counting its keys
            last = self.record.events[-1] if self.record.events else {}
            if last.get("kind") == "key_dropped":
                last["count"] += 1
            else:
                self._event("key_dropped", count=1)
                log.warning("call %s: keys dropped: %d inputs already waiting", self.call_sid, MAX_PENDING_KEYS)
            return
        self._listening_since_ms = None
        prompt = self._prompt
        if prompt is not None and prompt.interruptible and prompt.playing and prompt.interrupted is None:
            self._interrupt(prompt, cause="key")
        self._inputs.put_nowait(KeyInput(digit, self._stream_ms, time.perf_counter()))

    def _interrupt(self, prompt: Prompt, cause: str, by: str = "") -> None:
        """Stop the prompt now: Twilio drops what it has buffered; what was heard is what the marks said."""
        in_progress = prompt.heard
        fraction = 0.0
        if in_progress < len(prompt.sentence_ms) and prompt.sentence_ms[in_progress] > 0:
            since = prompt.last_mark_ms if prompt.last_mark_ms is not None else prompt.started_ms or 0
            fraction = min(1.0, max(0.0, (self._stream_ms - since) / prompt.sentence_ms[in_progress]))
        prompt.interrupted = {
            "cause": cause,
            "by": by or cause,  # for speech: "speech_ms" (voiced length) or "words" (partial recognition)
            "at_ms": self._stream_ms,
            "heard": redact_text(prompt.heard_text),
            "unheard": redact_text(prompt.unheard_text),
            # How far into the sentence that was cut the caller got, estimated from stream time since the last mark.
            "cut_sentence_heard_fraction": round(fraction, 2),
        }
        prompt.finished.set()
        if prompt.turn is not None:
            prompt.turn.interrupted = prompt.interrupted
        self._event("barge_in", prompt=prompt.kind, **prompt.interrupted)
        log.info("call %s: %s stopped the %s prompt", self.call_sid, cause, prompt.kind)
        self._spawn(self._clear())

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _clear(self) -> None:
        async with self._send_lock:
            await self._transport.clear()

    # --- the dialogue task -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._greet()
            while not self.finished.is_set():
                item = await self._next_input()
                if isinstance(item, NoInput):
                    await self._on_no_input(item)
                elif isinstance(item, KeyInput):
                    await self._on_key(item)
                else:
                    await self._on_speech(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: unexpected fault", self.call_sid)
            await self._fault_handoff("unexpected fault in the call session", None)

    async def _next_input(self) -> CallerInput:
        """The next input; while none is waiting, the no-input clock runs (in stream time, from now)."""
        if self._inputs.empty() and not self._endpointer.in_speech:
            self._listening_since_ms = self._stream_ms
        item = await self._inputs.get()
        self._listening_since_ms = None
        return item

    async def _greet(self) -> None:
        try:
            texts = await self._rasa.start_call(self.call_sid)
        except NluUnavailable as e:
            log.error("call %s: dialogue unavailable at call start: %s", self.call_sid, e)
            await self._fault_handoff("dialogue server unavailable at call start", None)
            return
        # The sentence saying the caller is talking to an automated assistant is always heard whole.
        text = " ".join(texts) or prompts.FALLBACK_GREETING
        sentences = split_sentences(text)
        protected = 1 + max((i for i, t in enumerate(sentences) if prompts.DISCLOSURE in t.lower()), default=0)
        await self._speak(text, kind="greeting", protected=protected)

    async def _on_no_input(self, item: NoInput) -> None:
        if not self._inputs.empty() or self._endpointer.in_speech:
            return  # the caller spoke or pressed a key meanwhile
        if self._held:  # a long turn whose last piece was too short to be an utterance of its own
            transcript, held = self._take_held()
            await self._on_words(held, transcript, asr_ms=0.0)
            return
        self._event("no_input", count=self._no_inputs + 1, since_ms=item.since_ms)
        await self._ask_again(prompts.NO_INPUT_REPROMPT)

    async def _ask_again(self, reprompt: str) -> None:
        """Nothing usable came from the caller (silence, or noise read as words): ask again, then offer the keypad,
        then put the caller through to a person."""
        self._no_inputs += 1
        log.info("call %s: nothing heard (%d in a row)", self.call_sid, self._no_inputs)
        if self._no_inputs >= self._policy.no_input_max:
            await self._speak(prompts.NO_INPUT_HANDOFF, kind="no-input", interruptible=False)
            self._hand_off(FALLBACK_QUEUE, "no input from the caller", None)
        elif self._no_inputs == 1 or self._keypad is None:
            await self._speak(reprompt, kind="reprompt")
        else:
            await self._speak(f"{prompts.NO_INPUT_KEYPAD} {self._keypad.menu_text()}", kind="menu")

    async def _on_key(self, item: KeyInput) -> None:
        assert self._keypad is not None
        self._no_inputs = 0
        self._unconfirmed = None
        self._event("key", key=item.key)
        if item.key == self._keypad.repeat_key:
            await self._speak(self._keypad.menu_text(), kind="menu")
            return
        intent = self._keypad.intent_for(item.key)
        if intent is None:
            await self._speak(f"{prompts.KEY_NOT_IN_MENU} {self._keypad.menu_text()}", kind="menu")
            return
        turn = self._new_turn(item.at_ms, item.at_ms, input="keypad")
        turn.transcript = f"[key {item.key}]"
        turn.asr_confidence = 1.0
        await self._converse(turn, f"/{intent}", {"input": "keypad", "key": item.key}, item.at)

    async def _on_speech(self, item: SpeechInput) -> None:
        utterance = item.utterance
        try:
            t0 = time.perf_counter()
            if item.transcript is not None:
                transcript = await item.transcript
            else:
                audio = pcm16_to_float(utterance.pcm)
                transcript = await asyncio.to_thread(self._asr.transcribe, audio, TELEPHONE_RATE, self._asr_context())
            asr_ms = (time.perf_counter() - t0) * 1000  # after the endpoint: what the caller waited for
        except AsrError as e:
            log.error("call %s: ASR failed: %s", self.call_sid, e)
            turn = self._new_turn(utterance.started_ms, utterance.speech_end_ms)
            turn.error = f"asr: {e}"
            await self._fault_handoff("speech recognition failed", turn)
            return
        noise = not transcript.is_empty and self._heard_noise(transcript)
        if self._held and (transcript.is_empty or noise):
            # The tail of a long turn held nothing of use: the turn is what was held.
            whole, held = self._take_held()
            await self._on_words(held, whole, asr_ms)
            return
        if transcript.is_empty:
            self._event("no_words", started_ms=utterance.started_ms, speech_end_ms=utterance.speech_end_ms)
            log.info("call %s: no words recognised in %d ms of audio", self.call_sid, len(utterance.pcm) // 8)
            if item.barged_in and item.over is not None:
                await self._resume(item.over)
            return
        if noise:
            # Background talk or noise that the recogniser wrote words for: not a request (README, bad input).
            self._event("noise_words", text=redact_text(transcript.text), asr_confidence=transcript.confidence,
                        no_speech=transcript.no_speech, stopped_prompt=item.barged_in)  # fmt: skip
            if item.barged_in and item.over is not None:
                await self._resume(item.over)
            else:
                await self._ask_again(prompts.NOT_CAUGHT_REPROMPT)
            return
        vad = self._settings.vad
        turn_started_ms = self._held[0][1].utterance.started_ms if self._held else utterance.started_ms
        span_s = (utterance.speech_end_ms - turn_started_ms) / 1000  # the turn so far, in stream time
        if utterance.truncated and span_s + vad.max_utterance_s <= vad.max_turn_s:  # another piece still fits
            # Still talking at the longest utterance the line takes: these words wait for the rest of the turn, which
            # is decided whole when the caller pauses (a story's request usually comes at its end).
            self._held.append((transcript, item))
            self._event("long_turn_held", pieces=len(self._held), audio_s=round(transcript.audio_s, 2))
            return
        if self._held:
            transcript, item = self._take_held((transcript, item))
        await self._on_words(item, transcript, asr_ms)

    def _heard_noise(self, transcript: Transcript) -> bool:
        context = self._asr_context()
        prompt = context.prompt if context else None
        return heard_noise(transcript.text, transcript.confidence, transcript.no_speech, prompt)

    def _take_held(self, last: tuple[Transcript, SpeechInput] | None = None) -> tuple[Transcript, SpeechInput]:
        """The held pieces of a long turn, followed by its last piece if there is one, as one utterance."""
        pieces = [*self._held, *([last] if last is not None else [])]
        self._held = []
        first, final = pieces[0][1], pieces[-1][1]
        whole = replace(final, utterance=replace(final.utterance, started_ms=first.utterance.started_ms))
        return join_transcripts([t for t, _ in pieces]), whole

    async def _on_words(self, item: SpeechInput, transcript: Transcript, asr_ms: float) -> None:
        utterance = item.utterance
        if self._listening_noise(item, transcript.text):
            # "mm", "yeah" over the assistant: the caller is listening, not taking the turn.
            self._event("backchannel", text=redact_text(transcript.text), stopped_prompt=item.barged_in)
            if item.barged_in and item.over is not None:
                await self._resume(item.over)
            return
        self._no_inputs = 0
        turn = self._new_turn(utterance.started_ms, utterance.speech_end_ms)
        turn.asr_ms, turn.barged_in = asr_ms, item.barged_in
        # What we keep is redacted; Rasa gets the words as heard (its extractor needs the number, and its
        # tracker store redacts before writing).
        turn.transcript, turn.asr_confidence = redact_text(transcript.text), transcript.confidence
        metadata = {"input": "speech", "asr": self._asr_metadata(transcript)}
        if self._unconfirmed is not None:
            await self._on_confirmation_answer(turn, transcript, metadata, item.endpoint_at)
            return
        if transcript.confidence < self._policy.confirm_below_confidence and await self._worth_reading_back(
            transcript.text
        ):
            self._unconfirmed = (transcript.text, turn)
            turn.decision = str(READ_BACK)
            # The caller hears their own words back; the record keeps them redacted, as every transcript.
            read_back = prompts.CONFIRM.format(text=transcript.text.strip().rstrip(".?!"))
            turn.reply = redact_text(read_back)
            self._event("confirm_asked", turn=turn.index, asr_confidence=transcript.confidence)
            await self._speak(read_back, kind="confirm", turn=turn, endpoint_at=item.endpoint_at)
            return
        await self._converse(turn, transcript.text, metadata, item.endpoint_at)

    async def _worth_reading_back(self, text: str) -> bool:
        """An uncertain transcript is read back unless the NLU is sure what it means, or it is small talk ("hello",
        "no"): a wrong guess there costs less than the question. Asks NLU only; the conversation is not touched."""
        try:
            intent, confidence = await self._rasa.parse(text)
        except NluUnavailable:
            return False  # the dialogue turn that follows meets the same fault and handles it
        return intent not in self._smalltalk and confidence < self._policy.confirm_below_nlu_confidence

    async def _on_confirmation_answer(
        self, turn: TurnRecord, transcript: Transcript, metadata: dict[str, Any], endpoint_at: float
    ) -> None:
        """The caller answers "Did you say ...?": yes -> act on what was read back; no -> ask again; anything else
        is a new request (read back no more than once in a row)."""
        held_text, held_turn = self._unconfirmed or ("", turn)
        self._unconfirmed = None
        try:
            answer, _ = await self._rasa.parse(transcript.text)
        except NluUnavailable as e:
            turn.error = f"nlu: {e}"
            await self._fault_handoff("dialogue server unavailable", turn)
            return
        self._event("confirm_answered", turn=held_turn.index, answer=answer)
        if answer == "affirm":
            turn.confirms_turn = held_turn.index
            metadata = {**metadata, "confirmed": True, "asr": {**metadata["asr"], "confirmed_by_caller": True}}
            await self._converse(turn, held_text, metadata, endpoint_at)
        elif answer == "deny":
            turn.decision, turn.reply = str(READ_BACK_DENIED), prompts.CONFIRM_DENIED
            await self._speak(turn.reply, kind="confirm", turn=turn, endpoint_at=endpoint_at)
        else:
            await self._converse(turn, transcript.text, metadata, endpoint_at)

    def _new_turn(self, started_ms: int, end_ms: int, input: str = "speech") -> TurnRecord:
        turn = TurnRecord(
            index=len(self.record.turns) + 1, speech_started_ms=started_ms, speech_end_ms=end_ms, input=input
        )
        self.record.turns.append(turn)
        return turn

    def _listening_noise(self, item: SpeechInput, text: str) -> bool:
        """Backchannel words said over the assistant, before the prompt's last sentence: the caller is listening.
        Over the last sentence (usually a question such as "anything else?") or over a read-back they are an
        answer, and so a turn."""
        prompt = item.over
        if prompt is None or prompt.kind == "confirm" or item.over_sentence >= len(prompt.sentences) - 1:
            return False
        return self._is_backchannel(text)

    def _is_backchannel(self, text: str) -> bool:
        words = [w.strip(".,!?;:'\"").lower() for w in text.replace("-", " - ").split()]
        words = [w for w in words if w and w != "-"]
        return bool(words) and all(w in self._backchannels for w in words)

    def _asr_metadata(self, transcript: Transcript) -> dict[str, Any]:
        return {
            "engine": self._settings.asr.engine,
            "confidence": transcript.confidence,
            "no_speech": transcript.no_speech,
            "words": [{"word": w.text, "confidence": round(w.confidence, 3)} for w in transcript.words],
            "alternatives": [{"text": a.text, "confidence": round(a.confidence, 3)} for a in transcript.alternatives],
        }

    async def _converse(self, turn: TurnRecord, text: str, extra: dict[str, Any], endpoint_at: float) -> None:
        """One turn through the dialogue server, then the reply spoken and the decision carried out."""
        metadata = {
            "channel": "twilio_voice",
            "call_sid": self.call_sid,
            "stream_sid": self.stream_sid,
            "caller": self.record.caller,
            "turn": turn.index,
            **extra,
        }
        try:
            result: DialogueTurn = await self._rasa.respond(text, self.call_sid, metadata)
        except NluUnavailable as e:
            log.error("call %s: dialogue failed: %s", self.call_sid, e)
            turn.error = f"nlu: {e}"
            await self._fault_handoff("dialogue server unavailable", turn)
            return
        turn.nlu_ms = result.latency_ms
        turn.intent, turn.nlu_confidence = result.intent, result.confidence
        turn.intent_ranking = [{"name": n, "confidence": round(c, 4)} for n, c in result.intent_ranking[:5]]
        # Entity values are the caller's words: a personal identity number is one.
        turn.entities = [{**e, "value": redact_text(str(e.get("value", "")))} for e in result.entities]
        if not result.details and result.intent not in self._smalltalk:
            # Every request but small talk is decided by a custom action, whose message carries the decision. None
            # came: the action server failed, and Rasa carried on with only what its rules say ("anything else?").
            log.error("call %s: turn %d (%s) got no decision from the action server", self.call_sid, turn.index,
                      result.intent)  # fmt: skip
            turn.error = "actions: no decision from the action server"
            await self._fault_handoff("action server unavailable", turn)
            return
        turn.decision, turn.reply = str(result.decision), result.reply
        log.info(
            "call %s: turn %d: intent=%s (%.2f) decision=%s",
            self.call_sid,
            turn.index,
            result.intent,
            result.confidence,
            result.decision,
        )
        if result.decision.kind == "answer":
            self.record.answered_topics.append(result.decision.target)
        routing = result.decision.kind == "route"
        await self._speak(
            result.reply, kind=f"turn-{turn.index}", turn=turn, endpoint_at=endpoint_at, interruptible=not routing
        )
        if routing:
            self._hand_off(result.decision.target, str(result.details.get("reason") or result.intent), turn)
        elif result.decision == GOODBYE:
            self.record.farewell = True
            self.finished.set()

    # --- speaking --------------------------------------------------------------------------------------------

    async def _speak(
        self,
        text: str,
        kind: str,
        turn: TurnRecord | None = None,
        endpoint_at: float | None = None,
        interruptible: bool = True,
        protected: int = 0,
    ) -> Prompt:
        """Synthesise ``text`` sentence by sentence, sending each as soon as it is ready (the first sentence plays
        while the rest is synthesised), with a mark after each; return when Twilio has played it all or the caller
        interrupted it."""
        prompt = Prompt(kind, split_sentences(text), interruptible, protected=protected, turn=turn)
        questions = [s for s in prompt.sentences if s.rstrip().endswith("?")]
        self._last_question = questions[-1] if questions else None  # what the caller's next turn may answer
        if turn is not None:
            self._turn_decided(turn)
        if not prompt.sentences:
            return prompt
        with self._playing(prompt):
            for index, sentence in enumerate(prompt.sentences):
                if prompt.interrupted is not None:
                    break
                t0 = time.perf_counter()
                try:
                    audio = await asyncio.to_thread(self._tts.telephone, sentence)
                except TtsError as e:
                    log.error("call %s: every TTS engine failed: %s", self.call_sid, e)
                    if turn is not None:
                        turn.error = f"tts: {e}"
                    prompt.finished.set()
                    await self._fault_handoff("speech synthesis failed", turn)
                    return prompt
                if turn is not None:
                    turn.tts_ms += (time.perf_counter() - t0) * 1000
                await self._send_sentence(prompt, index, audio, turn, endpoint_at)
            await prompt.finished.wait()  # the last mark came back, or the caller interrupted
        said = prompt.heard_text if prompt.interrupted is not None else text
        if said:
            self.record.said.append(redact_text(said))
        return prompt

    async def _send_sentence(
        self, prompt: Prompt, index: int, audio: bytes, turn: TurnRecord | None = None, endpoint_at: float | None = None
    ) -> None:
        self._prompt_seq += 1
        mark = f"{prompt.kind}.{self._prompt_seq}"
        if index == len(prompt.sentences) - 1:
            mark += FINAL_MARK_SUFFIX  # the prompt's last sentence: its echo means the caller heard it all
            prompt.final_mark = mark
        self._marks[mark] = (prompt, index)
        prompt.sentence_ms.append(len(audio) // (TELEPHONE_RATE // 1000))
        async with self._send_lock:
            for frame in frames(audio):
                if prompt.interrupted is not None:
                    self._marks.pop(mark, None)
                    return
                await self._transport.send_audio(frame)
                if prompt.started_ms is None:
                    prompt.started_ms = self._stream_ms
                    if turn is not None and endpoint_at is not None:
                        turn.response_ms = round((time.perf_counter() - endpoint_at) * 1000, 1)
            await self._transport.send_mark(mark)

    async def _resume(self, prompt: Prompt) -> None:
        """A listening noise stopped a prompt: carry on from the sentence that was cut."""
        rest = prompt.unheard_text
        if rest:
            self._event("resumed", prompt=prompt.kind)
            await self._speak(rest, kind=f"{prompt.kind}-resumed", turn=None, interruptible=prompt.interruptible)

    async def _play(self, mulaw: bytes, kind: str) -> None:
        """Send ready audio (never interruptible), then wait until it played."""
        prompt = Prompt(kind, [kind], interruptible=False)
        with self._playing(prompt):
            await self._send_sentence(prompt, 0, mulaw)
            await prompt.finished.wait()

    @contextlib.contextmanager
    def _playing(self, prompt: Prompt) -> Iterator[None]:
        """``prompt`` is what the assistant is saying (what barge-in and keys act on) until this block ends."""
        self._prompt = prompt
        try:
            yield
        finally:
            if self._prompt is prompt:
                self._prompt = None

    # --- ending the bot part ---------------------------------------------------------------------------------

    def _hand_off(self, queue: str, reason: str, turn: TurnRecord | None, fault: bool = False) -> None:
        self.record.handoff = HandoffRequested(
            queue=queue, reason=reason, turn=turn.index if turn else None, fault=fault, at=now_iso()
        )
        self.record.outcome = "failed" if fault else f"routed:{queue}"
        log.info("call %s: handed off to queue %s (%s)", self.call_sid, queue, reason)
        self.finished.set()

    def _turn_decided(self, turn: TurnRecord) -> None:
        if self._on_turn is not None:
            self._on_turn(self.call_sid, turn)

    async def _fault_handoff(self, reason: str, turn: TurnRecord | None) -> None:
        """Never leave the caller in silence: apologise (pre-synthesised audio) and route to a person."""
        if self.finished.is_set():
            return
        if turn is not None:
            self._turn_decided(turn)
        if self._prompt is not None and self._prompt.playing:
            self._interrupt(self._prompt, cause="fault")
        await self._play(self._apology_audio, kind="apology")
        self.record.said.append(prompts.APOLOGY)
        self._hand_off(FALLBACK_QUEUE, reason, turn, fault=True)
