"""One phone call: caller audio -> VAD -> ASR -> dialogue -> TTS -> audio back, and the call's record.

The session is the call's loop and its dialogue policy; its parts each own one concern: the listener
(telephony/listening.py: VAD, early recognition, barge-in by speech, the no-input clock), playback
(telephony/playback.py: prompts, marks, clear), the rules (telephony/turn_policy.py, pure) and the record
(telephony/call_record.py). Turn-taking is the session's own business, so it works whatever the dialogue does:
- barge-in: speech over an interruptible prompt stops it at once (the transport's clear); per-sentence marks tell
  what the caller really heard; listening noises ("mm", "yeah") said over a prompt are not a turn, and a prompt
  they stopped carries on where it was cut;
- no input: a reprompt, then the keypad menu, then a person;
- the keypad menu at any time (a key is handled as the intent it stands for);
- a transcript the recogniser is unsure of is read back ("Did you say ...?") before the assistant acts on it.

The call's state (``CallState``) is explicit; every move is one of the call's events (``kind: state``).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from typing import Any

from foundation.redaction import mask_phone_number, redact_text
from foundation.settings import Settings
from foundation.vocabulary import FALLBACK_QUEUE, GOODBYE, READ_BACK, READ_BACK_DENIED
from nlu.asr_context import AsrVocabulary
from nlu.dialogue import Dialogue, DialogueTurn, NluUnavailable
from telephony.call_record import CallRecord, HandoffRequested, TurnRecord, now_iso
from telephony.guards import heard_noise
from telephony.listening import CallerInput, KeyInput, Listener, LongTurn, NoInput, SpeechInput, transcript_metadata
from telephony.playback import Playback, Prompt
from telephony.routing import KeypadMenu
from telephony.tasks import CallTasks
from telephony.transport import CallStart, CallTransport
from telephony.turn_policy import (
    after_nothing_heard,
    worth_reading_back,
)
from voice.asr.base import AsrEngine, AsrError, RecognitionContext, Transcript
from voice.codecs import TELEPHONE_RATE, pcm16_to_float
from voice.tts.base import TelephoneVoice, TtsError, split_sentences

log = logging.getLogger(__name__)


class CallState(enum.Enum):
    """Where the call is. GREETING until the greeting is heard; then LISTENING for the caller (CONFIRMING while a
    read-back awaits yes or no), THINKING once an input came (recognition, dialogue), SPEAKING while a reply plays;
    HANDED_OFF once the assistant's part is over (a queue takes the call); ENDED when the stream is gone."""

    GREETING = "greeting"
    LISTENING = "listening"
    CONFIRMING = "confirming"
    THINKING = "thinking"
    SPEAKING = "speaking"
    HANDED_OFF = "handed_off"
    ENDED = "ended"


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
        self._asr_engine = settings.asr.engine
        self._vad = settings.vad
        self._policy = settings.turn_taking
        self._on_turn = on_turn  # told of each turn once decided (the gateway writes it to the store at once)
        self._asr = asr
        self._tts = tts
        self._rasa = rasa
        self._apology_audio = apology_audio
        self._keypad = keypad if settings.turn_taking.keypad else None
        self._smalltalk = smalltalk
        self._recognition = recognition  # the domain's words for the recogniser, and the question being answered
        self._last_question: str | None = None
        self._spoken = settings.spoken  # what the line says in its language
        self._say = self._spoken.prompts
        self.stream_sid = call.stream_sid
        self.call_sid = call.call_sid
        self.record = CallRecord(
            call_sid=call.call_sid,
            stream_sid=call.stream_sid,
            caller=mask_phone_number(call.caller_number),
            started_at=now_iso(),
        )
        self.state = CallState.GREETING
        self._tasks = CallTasks(call.call_sid)
        self._playback = Playback(call.call_sid, transport, self._tasks, lambda: self._listener.stream_ms, self._event)
        self._listener = Listener(
            call.call_sid, settings.vad, settings.turn_taking, asr, self._playback, self._tasks, self.record,
            self._asr_context,
        )  # fmt: skip
        self._no_inputs = 0
        self._unconfirmed: tuple[str, TurnRecord] | None = None  # transcript read back, awaiting yes or no
        self._held = LongTurn()  # pieces of a turn longer than the longest utterance, held until the caller pauses
        self.finished = asyncio.Event()  # set when the bot part of the call is over (hand off or goodbye)

    # --- lifecycle and state ---------------------------------------------------------------------------------

    def begin(self) -> None:
        self._tasks.start(self._run(), "dialogue")

    async def close(self, outcome_if_open: str = "abandoned") -> None:
        """The stream ended (caller hung up, or we finished). Stop work and settle the outcome."""
        await self._tasks.close()
        self._playback.release()
        if not self.record.outcome:
            last = self.record.answered_topics[-1] if self.record.answered_topics else None
            self.record.outcome = f"answered:{last}" if last else outcome_if_open
        self.record.ended_at = now_iso()
        self._enter(CallState.ENDED)
        self.finished.set()

    def _enter(self, state: CallState) -> None:
        """The call moves to ``state``; the move is one of the call's events."""
        if state is self.state:
            return
        if self.state in (CallState.HANDED_OFF, CallState.ENDED) and state is not CallState.ENDED:
            return  # the bot part is over: nothing moves it back
        self._event("state", to=state.value, **{"from": self.state.value})
        self.state = state

    def _event(self, kind: str, **details: Any) -> None:
        self.record.events.append({"at_ms": self._listener.stream_ms, "kind": kind, **details})

    def note(self, kind: str, **details: Any) -> None:
        """An event of the call seen by the gateway rather than the session (e.g. the stream going silent)."""
        self._event(kind, **details)

    # --- inbound events (called by the gateway's reader; never block) ----------------------------------------

    def on_audio(self, mulaw: bytes, timestamp_ms: int) -> None:
        self._listener.on_audio(mulaw, timestamp_ms)

    def on_mark(self, name: str) -> None:
        self._playback.on_mark(name)

    def on_dtmf(self, digit: str) -> None:
        if self._keypad is None:
            log.info("call %s: key %s ignored (keypad menu disabled)", self.call_sid, digit)
            return
        self._listener.on_key(digit, self._event)

    def _asr_context(self) -> RecognitionContext | None:
        """The recogniser's bias for the next utterance: the domain's words, then the question it may answer."""
        return self._recognition.context(self._last_question) if self._recognition is not None else None

    # --- the dialogue task -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._greet()
            while not self.finished.is_set():
                item = await self._next_input()
                self._enter(CallState.THINKING)
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
        self._enter(CallState.CONFIRMING if self._unconfirmed is not None else CallState.LISTENING)
        listener = self._listener
        if listener.inputs.empty() and not listener.in_speech:
            listener.listening_since_ms = listener.stream_ms
        item = await listener.inputs.get()
        listener.listening_since_ms = None
        return item

    async def _greet(self) -> None:
        try:
            texts = await self._rasa.start_call(self.call_sid)
        except NluUnavailable as e:
            log.error("call %s: dialogue unavailable at call start: %s", self.call_sid, e)
            await self._fault_handoff("dialogue server unavailable at call start", None)
            return
        # The sentence saying the caller is talking to an automated assistant is always heard whole.
        text = " ".join(texts) or self._say.fallback_greeting
        sentences = split_sentences(text)
        protected = 1 + max((i for i, t in enumerate(sentences) if self._spoken.disclosure in t.lower()), default=0)
        await self._speak(text, kind="greeting", protected=protected)

    async def _on_no_input(self, item: NoInput) -> None:
        if not self._listener.inputs.empty() or self._listener.in_speech:
            return  # the caller spoke or pressed a key meanwhile
        if self._held:  # a long turn whose last piece was too short to be an utterance of its own
            transcript, held = self._held.take()
            await self._on_words(held, transcript, asr_ms=0.0)
            return
        self._event("no_input", count=self._no_inputs + 1, since_ms=item.since_ms)
        await self._ask_again(self._say.no_input_reprompt)

    async def _ask_again(self, reprompt: str) -> None:
        """Nothing usable came from the caller (silence, or noise read as words): ask again, then offer the keypad,
        then put the caller through to a person."""
        self._no_inputs += 1
        log.info("call %s: nothing heard (%d in a row)", self.call_sid, self._no_inputs)
        step = after_nothing_heard(self._no_inputs, self._policy.no_input_max, self._keypad is not None)
        if step == "handoff":
            await self._speak(self._say.no_input_handoff, kind="no-input", interruptible=False)
            self._hand_off(FALLBACK_QUEUE, "no input from the caller", None)
        elif step == "reprompt" or self._keypad is None:
            await self._speak(reprompt, kind="reprompt")
        else:
            await self._speak(f"{self._say.no_input_keypad} {self._keypad.menu_text()}", kind="menu")

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
            await self._speak(f"{self._say.key_not_in_menu} {self._keypad.menu_text()}", kind="menu")
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
            whole, held = self._held.take()
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
                await self._ask_again(self._say.not_caught_reprompt)
            return
        vad = self._vad
        turn_started_ms = self._held.started_ms(otherwise=utterance.started_ms)
        span_s = (utterance.speech_end_ms - turn_started_ms) / 1000  # the turn so far, in stream time
        if utterance.truncated and span_s + vad.max_utterance_s <= vad.max_turn_s:  # another piece still fits
            # Still talking at the longest utterance the line takes: these words wait for the rest of the turn, which
            # is decided whole when the caller pauses (a story's request usually comes at its end).
            self._held.hold(transcript, item)
            self._event("long_turn_held", pieces=len(self._held), audio_s=round(transcript.audio_s, 2))
            return
        if self._held:
            transcript, item = self._held.take((transcript, item))
        await self._on_words(item, transcript, asr_ms)

    def _heard_noise(self, transcript: Transcript) -> bool:
        context = self._asr_context()
        prompt = context.prompt if context else None
        return heard_noise(transcript.text, transcript.confidence, transcript.no_speech, prompt)

    async def _on_words(self, item: SpeechInput, transcript: Transcript, asr_ms: float) -> None:
        utterance = item.utterance
        if self._listener.is_listening_noise(item, transcript.text):
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
        metadata = {"input": "speech", "asr": transcript_metadata(self._asr_engine, transcript)}
        if self._unconfirmed is not None:
            await self._on_confirmation_answer(turn, transcript, metadata, item.endpoint_at)
            return
        if transcript.confidence < self._policy.confirm_below_confidence and await self._worth_reading_back(
            transcript.text
        ):
            self._unconfirmed = (transcript.text, turn)
            turn.decision = str(READ_BACK)
            # The caller hears their own words back; the record keeps them redacted, as every transcript.
            read_back = self._say.confirm.format(text=transcript.text.strip().rstrip(".?!"))
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
        return worth_reading_back(intent, confidence, self._smalltalk, self._policy.confirm_below_nlu_confidence)

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
            turn.decision, turn.reply = str(READ_BACK_DENIED), self._say.confirm_denied
            await self._speak(turn.reply, kind="confirm", turn=turn, endpoint_at=endpoint_at)
        else:
            await self._converse(turn, transcript.text, metadata, endpoint_at)

    def _new_turn(self, started_ms: int, end_ms: int, input: str = "speech") -> TurnRecord:
        turn = TurnRecord(
            index=len(self.record.turns) + 1, speech_started_ms=started_ms, speech_end_ms=end_ms, input=input
        )
        self.record.turns.append(turn)
        return turn

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
        if self.state is not CallState.GREETING:
            self._enter(CallState.SPEAKING)
        with self._playback.playing(prompt):
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
                await self._playback.send_sentence(prompt, index, audio, turn, endpoint_at)
            await prompt.finished.wait()  # the last mark came back, or the caller interrupted
        said = prompt.heard_text if prompt.interrupted is not None else text
        if said:
            self.record.said.append(redact_text(said))
        return prompt

    async def _resume(self, prompt: Prompt) -> None:
        """A listening noise stopped a prompt: carry on from the sentence that was cut."""
        rest = prompt.unheard_text
        if rest:
            self._event("resumed", prompt=prompt.kind)
            await self._speak(rest, kind=f"{prompt.kind}-resumed", turn=None, interruptible=prompt.interruptible)

    # --- ending the bot part ---------------------------------------------------------------------------------

    def _hand_off(self, queue: str, reason: str, turn: TurnRecord | None, fault: bool = False) -> None:
        self.record.handoff = HandoffRequested(
            queue=queue, reason=reason, turn=turn.index if turn else None, fault=fault, at=now_iso()
        )
        self.record.outcome = "failed" if fault else f"routed:{queue}"
        log.info("call %s: handed off to queue %s (%s)", self.call_sid, queue, reason)
        self._enter(CallState.HANDED_OFF)
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
        current = self._playback.current
        if current is not None and current.playing:
            self._playback.interrupt(current, cause="fault")
        await self._playback.play(self._apology_audio, kind="apology")
        self.record.said.append(self._say.apology)
        self._hand_off(FALLBACK_QUEUE, reason, turn, fault=True)
