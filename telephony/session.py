"""One phone call: caller audio -> VAD -> ASR -> dialogue -> TTS -> audio back, and the call's record.

The session is the call's loop and its dialogue policy; its parts each own one concern: the listener
(telephony/listening.py: VAD, early recognition, barge-in by speech, the no-input clock, what an utterance holds),
playback (telephony/playback.py: prompts sentence by sentence, marks, clear), the read-back (telephony/read_back.py),
the rules (telephony/turn_policy.py, pure), the state (telephony/call_state.py) and the record
(telephony/call_record.py). Turn-taking is the session's own business, so it works whatever the dialogue does:
- barge-in: speech over an interruptible prompt stops it at once (the transport's clear); per-sentence marks tell
  what the caller really heard; listening noises ("mm", "yeah") said over a prompt are not a turn, and a prompt
  they stopped carries on where it was cut;
- no input: a reprompt, then the keypad menu, then a person;
- the keypad menu at any time (a key is handled as the intent it stands for);
- a transcript the recogniser is unsure of is read back ("Did you say ...?") before the assistant acts on it;
- a slow reply: "One moment, please." when the caller has waited TURN_TAKING__HOLD_AFTER_S for it, and a person when
  it has not come in TURN_TAKING__REPLY_LIMIT_S;
- a reply taken back: a caller who goes on with their turn soon after the line decided its first words, before they
  have heard much of the reply, has it withdrawn, the dialogue rewound, and their words joined with what follows.
Every move of the call's state is one of the call's events (``kind: state``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from foundation.log_context import TURN
from foundation.redaction import mask_phone_number, redact_text
from foundation.vocabulary import FALLBACK_QUEUE, GOODBYE, READ_BACK, READ_BACK_DENIED
from nlu.dialogue import DialogueTurn, NluUnavailable
from nlu.sentiment import turn_sentiment
from telephony.call_parts import CallParts
from telephony.call_record import (
    FAULT_EVENT,
    HOLDING_EVENT,
    HUNG_UP_UNANSWERED_EVENT,
    TAKEN_BACK_EVENT,
    CallRecord,
    HandoffRequested,
    TurnRecord,
    now_iso,
)
from telephony.call_state import CallState, CallStates
from telephony.listening import (
    CallerInput,
    Heard,
    HeardKind,
    HeldRelease,
    KeyInput,
    Listener,
    NoInput,
    SpeechInput,
    transcript_metadata,
)
from telephony.playback import Playback, Prompt
from telephony.read_back import Answer, ReadBack
from telephony.recording import CallRecording, personal_audio
from telephony.tasks import CallTasks
from telephony.transport import CallStart, CallTransport
from telephony.turn_policy import after_nothing_heard, went_on_before_reply_heard
from voice.asr.base import AsrError, RecognitionContext, Transcript
from voice.codecs import FRAME_MS
from voice.tts.base import TtsError, split_sentences
from voice.vad import Endpointer

log = logging.getLogger(__name__)

SLOW = "slow"  # the fault part of a call whose reply did not come in time (TURN_TAKING__REPLY_LIMIT_S)


@dataclass
class OpenReply:
    """The reply to a caller's words while it may still be taken back (TURN_TAKING__TAKE_BACK): the caller may yet
    go on with the same turn."""

    turn: TurnRecord
    transcript: Transcript  # the words as heard, before the key-word repair (joined, they are repaired again)
    item: SpeechInput
    question_before: str | None  # what the caller's words answered (the recogniser's bias), again if taken back
    told: bool = False  # the dialogue has the words (a read-back does not tell it)
    prompt: Prompt | None = None  # the reply, once it is being said
    went_on_at_ms: int | None = None  # stream time the caller's voice came back: the reply is taken back
    heard_ms: int = 0  # how much of the reply had played by then


class CallSession:
    """Runs one call. The line feeds it inbound events; it plays audio, marks and clears through ``transport``.

    Inputs (utterances, key presses, no-input timeouts) are handled one at a time by the session's own dialogue task,
    so audio keeps flowing while the assistant thinks. Any fault (ASR, Rasa, TTS) ends in an apology and a handoff to
    ``general``.
    """

    def __init__(
        self,
        call: CallStart,
        parts: CallParts,
        transport: CallTransport,
        on_turn: Callable[[str, TurnRecord], None] | None = None,
    ):
        self._parts = parts
        self._on_turn = on_turn  # told of each turn once decided (the gateway writes it to the store at once)
        self._rasa = parts.dialogue
        self._keypad = parts.keypad
        self._last_question: str | None = None  # what the caller's next turn may answer (biases the recogniser)
        self._say = parts.spoken.prompts
        self.stream_sid = call.stream_sid
        self.call_sid = call.call_sid
        self.record = CallRecord(
            call_sid=call.call_sid,
            stream_sid=call.stream_sid,
            caller=mask_phone_number(call.caller_number),
            started_at=now_iso(),
        )
        self._states = CallStates(lambda was, now: self._event("state", to=now.value, **{"from": was.value}))
        self._tasks = CallTasks(call.call_sid)
        self.recording = CallRecording() if parts.recording else None  # kept when the caller heard the notice
        self._playback = Playback(
            call.call_sid, transport, self._tasks, lambda: self._listener.stream_ms, self._event, self.recording
        )
        self._listener = Listener(
            call.call_sid, parts, self._playback, self._tasks, self.record, self._asr_context, self._event,
            on_speech_started=self._caller_spoke,
        )  # fmt: skip
        self._no_inputs = 0
        self._asked_to_hold = False  # the caller heard "One moment, please." while this input was worked on
        self._open: OpenReply | None = None  # the reply to the turn under way, while it may be taken back
        self._reopened: TurnRecord | None = None  # a turn whose reply was taken back: its words join the next one
        self._hearing: SpeechInput | None = None  # speech being recognised (and judged) for the dialogue task
        self._read_back = ReadBack(parts.dialogue, parts.turn_taking, parts.smalltalk, self._say.confirm)
        self.finished = asyncio.Event()  # set when the bot part of the call is over (hand off or goodbye)

    # --- lifecycle and state ---------------------------------------------------------------------------------

    def begin(self) -> None:
        self._tasks.start(self._run(), "dialogue")

    async def close(self, outcome_if_open: str = "abandoned") -> None:
        """The stream ended (caller hung up, or we finished). Stop work and settle the outcome."""
        unheard = self._hearing  # read before the dialogue task is cancelled, which clears it
        await self._tasks.close()
        self._playback.release()
        if not self.record.outcome:
            self._left_unanswered(unheard)
            last = self.record.answered_topics[-1] if self.record.answered_topics else None
            self.record.outcome = f"answered:{last}" if last else outcome_if_open
        self.record.ended_at = now_iso()
        self._states.enter(CallState.ENDED)
        self.finished.set()

    def _left_unanswered(self, unheard: SpeechInput | None) -> None:
        """The caller hung up while their last words were being recognised, or while words that sounded unfinished
        waited for the rest: the record keeps that turn, with the words that were recognised and no decision, so a
        supervisor sees what the caller said before leaving. Words still being recognised are not waited for (the
        recogniser is for callers still on the line); the recording loses their audio, and that of speech under way
        as the line went quiet, as no one has checked it for personal data."""
        if self.recording is not None:
            unchecked = [_audio_span(unheard)] if unheard is not None else []
            under_way = self._listener.speech_under_way_from_ms
            if under_way is not None:
                unchecked.append((under_way, self._listener.stream_ms + FRAME_MS))  # to the end of its last frame
            self.recording.silence(unchecked)
        held = self._listener.take_held(self._listener.stream_ms)
        first = held[1] if held is not None else unheard  # the turn began with the held words, if any
        if first is None:
            return
        last = unheard if unheard is not None else first
        turn = self._new_turn(first.utterance.started_ms, last.utterance.speech_end_ms)
        turn.transcript = redact_text(held[0].text) if held is not None else ""
        self._event(HUNG_UP_UNANSWERED_EVENT, turn=turn.index, recognised=unheard is None)

    @property
    def state(self) -> CallState:
        return self._states.current

    def _event(self, kind: str, **details: Any) -> None:
        self.record.events.append({"at_ms": self._listener.stream_ms, "kind": kind, **details})

    def note(self, kind: str, **details: Any) -> None:
        """An event of the call seen by the gateway rather than the session (e.g. the stream going silent)."""
        self._event(kind, **details)

    # --- inbound events (called by the gateway's reader; never block) ----------------------------------------

    def on_audio(self, mulaw: bytes, timestamp_ms: int) -> None:
        if self.recording is not None:
            self.recording.caller_audio(mulaw, timestamp_ms)
        self._listener.on_audio(mulaw, timestamp_ms)

    def on_mark(self, name: str) -> None:
        self._playback.on_mark(name)

    def on_dtmf(self, digit: str) -> None:
        if self._keypad is None:
            log.info("call %s: key %s ignored (keypad menu disabled)", self.call_sid, digit)
            return
        self._listener.on_key(digit)

    def _asr_context(self) -> RecognitionContext | None:
        """The recogniser's bias for the next utterance: the domain's words, then the question it may answer."""
        return self._parts.recognition.context(self._last_question) if self._parts.recognition is not None else None

    # --- the dialogue task -----------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._greet()
            while not self.finished.is_set():
                item = await self._next_input()
                self._states.enter(CallState.THINKING)
                await self._handle_in_time(item)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call %s: unexpected fault", self.call_sid)
            await self._fault_handoff("unexpected fault in the call session", None, "session")

    async def _handle(self, item: CallerInput) -> None:
        if isinstance(item, NoInput):
            await self._on_no_input(item)
        elif isinstance(item, KeyInput):
            await self._on_key(item)
        elif isinstance(item, HeldRelease):
            await self._on_held_release(item)
        else:
            await self._on_speech(item)

    async def _handle_in_time(self, item: CallerInput) -> None:
        """Handle ``item`` without leaving the caller in silence: TURN_TAKING__HOLD_AFTER_S after the end of their
        speech with no audio sent, the holding phrase; TURN_TAKING__REPLY_LIMIT_S after it with still none since,
        the work is dropped and the caller put through to a person (a recognition queue far behind, a stuck engine:
        a public line answers in time or hands over)."""
        policy = self._parts.turn_taking
        turns_before = len(self.record.turns)
        # The caller waits from the end of their speech, or, for speech that ended while a prompt went on (noise
        # under the greeting), from the end of what they heard.
        silent_since = max(_caller_silent_since(item), self._playback.heard_at)
        self._asked_to_hold = False
        work = asyncio.ensure_future(self._handle(item))
        try:
            sent = self._playback.frames_sent
            if policy.hold_after_s and await self._still_silent(work, sent, silent_since + policy.hold_after_s):
                self._asked_to_hold = True
                self._event(HOLDING_EVENT, waited_ms=round((time.perf_counter() - silent_since) * 1000))
                self.record.said.append(self._say.holding)
                await self._playback.hold(self._parts.ready.holding)
                sent = self._playback.frames_sent
            if policy.reply_limit_s and await self._still_silent(work, sent, silent_since + policy.reply_limit_s):
                work.cancel()
                await self._too_slow(item, turns_before)
                return
            await work
        finally:
            self._open = None  # handled: what the caller says from now on is a turn of its own
            if not work.done():
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await work

    async def _still_silent(self, work: asyncio.Future[None], sent: int, deadline: float) -> bool:
        """Waits for ``work`` until ``deadline`` (perf_counter), and on while the caller is talking (a long turn's
        piece recognised while they go on is not a wait for a reply, and nothing is said over them); True when it is
        still under way with no audio sent since ``sent`` frames."""
        await asyncio.wait({work}, timeout=max(0.0, deadline - time.perf_counter()))
        while self._listener.in_speech and not work.done():
            await asyncio.wait({work}, timeout=0.1)
        return not work.done() and self._playback.frames_sent == sent

    async def _too_slow(self, item: CallerInput, turns_before: int) -> None:
        """No reply in time: the turn under way (or, for words not yet recognised, a turn for them) says so, and the
        caller is put through to `general` with what the call holds."""
        limit = self._parts.turn_taking.reply_limit_s
        turn = self.record.turns[-1] if len(self.record.turns) > turns_before else None
        if turn is None and isinstance(item, SpeechInput):
            turn = self._new_turn(item.utterance.started_ms, item.utterance.speech_end_ms)
        if turn is not None:
            TURN.set(turn.index)
            turn.error = turn.error or f"slow: no reply within {limit:g} s"
        log.error("call %s: no reply within %g s of the caller's turn", self.call_sid, limit)
        await self._fault_handoff(f"no reply within {limit:g} s", turn, SLOW)

    async def _next_input(self) -> CallerInput:
        """The next input; while none is waiting, the no-input clock runs (in stream time, from now)."""
        self._states.enter(CallState.CONFIRMING if self._read_back.pending is not None else CallState.LISTENING)
        listener = self._listener
        if listener.inputs.empty() and not listener.in_speech:
            listener.listening_since_ms = listener.stream_ms
        item = await listener.inputs.get()
        listener.listening_since_ms = None
        return item

    async def _greet(self) -> None:
        try:
            texts = await self._rasa.start_call(self.call_sid, self._parts.spoken.code)
        except NluUnavailable as e:
            log.error("call %s: dialogue unavailable at call start: %s", self.call_sid, e)
            await self._fault_handoff("dialogue server unavailable at call start", None, "dialogue")
            return
        sentences = split_sentences(" ".join(texts) or self._say.fallback_greeting)
        protected = self._parts.spoken.sentences_to_disclosure(sentences)
        if self.recording is not None:
            # Right after the caller hears they talk to an automated assistant, and heard whole like that.
            sentences.insert(protected, self._say.recording_notice)
            protected += 1
        prompt = await self._speak(" ".join(sentences), kind="greeting", protected=protected)
        if self.recording is not None:
            self.recording.notice_heard = prompt.heard >= protected

    async def _on_no_input(self, item: NoInput) -> None:
        if not self._listener.inputs.empty() or self._listener.in_speech:
            return  # the caller spoke or pressed a key meanwhile
        if self._listener.held:  # a long turn whose last piece was too short to be an utterance of its own
            transcript, held = self._listener.held.take()
            await self._on_words(held, transcript, asr_ms=0.0)
            return
        self._event("no_input", count=self._no_inputs + 1, since_ms=item.since_ms)
        await self._ask_again(self._say.no_input_reprompt)

    async def _ask_again(self, reprompt: str) -> None:
        """Nothing usable came from the caller (silence, or noise read as words): ask again, then offer the keypad,
        then put the caller through to a person."""
        self._no_inputs += 1
        log.info("call %s: nothing heard (%d in a row)", self.call_sid, self._no_inputs)
        step = after_nothing_heard(self._no_inputs, self._parts.turn_taking.no_input_max, self._keypad is not None)
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
        self._read_back.forget()
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
        self._hearing = item
        heard: Heard | AsrError
        try:
            heard = await self._listener.hear(item)
        except AsrError as e:
            heard = e
        finally:
            self._hearing = None  # heard, failed, or dropped (the call ended, or its reply limit passed)
        if isinstance(heard, AsrError):
            log.error("call %s: ASR failed: %s", self.call_sid, heard)
            turn = self._new_turn(item.utterance.started_ms, item.utterance.speech_end_ms)
            turn.error = f"asr: {heard}"
            await self._fault_handoff("speech recognition failed", turn, "asr")
            return
        transcript, utterance = heard.transcript, heard.item.utterance
        if heard.kind is HeardKind.WORDS:
            await self._on_words(heard.item, transcript, heard.asr_ms)
            return
        self._keep_private(transcript, heard.item)  # a held piece, or words not taken as a turn
        if heard.kind is HeardKind.UNFINISHED:
            # "How do I apply for ..." and a pause: the line waits for the rest rather than answer the fragment.
            self._event("turn_unfinished", text=redact_text(transcript.text), pieces=len(self._listener.held))
            return
        if heard.kind is HeardKind.WENT_ON:
            # The caller spoke again while these words were being recognised: the pause was inside their turn, and
            # the line waits for the rest instead of answering the first part.
            self._event("caller_went_on", text=redact_text(transcript.text), pieces=len(self._listener.held))
            return
        if heard.kind is HeardKind.HELD:
            # Still talking at the longest utterance the line takes: these words wait for the rest of the turn, which
            # is decided whole when the caller pauses (a story's request usually comes at its end).
            self._event("long_turn_held", pieces=len(self._listener.held), audio_s=round(transcript.audio_s, 2))
            return
        if heard.kind is HeardKind.NOTHING:
            self._event("no_words", started_ms=utterance.started_ms, speech_end_ms=utterance.speech_end_ms,
                        line_noise=utterance.line_noise)  # fmt: skip
            log.info("call %s: no words %s in %d ms of audio", self.call_sid,
                     "(the line's noise, not recognised)" if utterance.line_noise else "recognised",
                     len(utterance.pcm) // 8)  # fmt: skip
        else:  # background talk or noise that the recogniser wrote words for: not a request (README, bad input)
            self._event("noise_words", text=redact_text(transcript.text), asr_confidence=transcript.confidence,
                        no_speech=transcript.no_speech, stopped_prompt=item.barged_in)  # fmt: skip
        if item.barged_in and item.over is not None:
            await self._resume(item.over)
        elif heard.kind is HeardKind.NOISE or self._asked_to_hold:
            # Noise written as words; or no words at all after the caller was asked to hold on: they are owed an answer.
            await self._ask_again(self._say.not_caught_reprompt)

    async def _on_held_release(self, release: HeldRelease) -> None:
        """The caller did not go on after unfinished words: they are the turn."""
        held = self._listener.take_held(release.at_ms)
        if held is None:  # already joined with what the caller said next
            return
        transcript, item = held
        self._event("unfinished_turn_taken", waited_ms=release.at_ms - item.utterance.speech_end_ms)
        await self._on_words(item, transcript, 0.0)

    def _keep_private(self, transcript: Transcript, item: SpeechInput) -> None:
        """The recording loses the audio of the personal data in these words (each piece of a long turn, and the
        turn whole: a number may run across two pieces)."""
        if self.recording is not None:
            self.recording.silence(personal_audio(transcript, _audio_span(item)))

    def _repaired(self, transcript: Transcript) -> Transcript:
        """The turn's words with the agency's words the recogniser nearly heard put right (ASR__KEY_WORD_REPAIR)."""
        if self._parts.repair is None:
            return transcript
        repaired, repairs = self._parts.repair.repair(transcript)
        if repairs:
            heard = [{"heard": redact_text(r.heard), "written": r.phrase} for r in repairs]
            self._event("key_words_repaired", words=heard)
        return repaired

    async def _on_words(self, item: SpeechInput, transcript: Transcript, asr_ms: float) -> None:
        utterance = item.utterance
        self._keep_private(transcript, item)
        heard, transcript = transcript, self._repaired(transcript)
        if self._listener.is_listening_noise(item, transcript.text):
            # "mm", "yeah" over the assistant: the caller is listening, not taking the turn.
            self._event("backchannel", text=redact_text(transcript.text), stopped_prompt=item.barged_in)
            if item.barged_in and item.over is not None:
                await self._resume(item.over)
            return
        self._no_inputs = 0
        turn = self._new_turn(utterance.started_ms, utterance.speech_end_ms)
        turn.asr_ms, turn.barged_in = asr_ms, item.barged_in
        turn.endpointing_ms = max(0, item.endpoint_ms - utterance.speech_end_ms)
        # What we keep is redacted; Rasa gets the words as heard (its extractor needs the number, and its
        # tracker store redacts before writing).
        turn.transcript, turn.asr_confidence = redact_text(transcript.text), transcript.confidence
        turn.sentiment = turn_sentiment(turn.transcript).as_dict()
        metadata = {"input": "speech", "asr": transcript_metadata(self._parts.asr_engine, transcript)}
        if self._read_back.pending is not None:
            await self._on_confirmation_answer(turn, transcript, metadata, item.endpoint_at)
            return
        if self._parts.turn_taking.take_back and self._listener.may_hold(item):
            self._open = OpenReply(turn, heard, item, self._last_question)
        if await self._read_back.wanted(transcript):
            turn.decision = str(READ_BACK)
            # The caller hears their own words back; the record keeps them redacted, as every transcript.
            read_back = self._read_back.ask(transcript.text, turn)
            turn.reply = redact_text(read_back)
            self._event("confirm_asked", turn=turn.index, asr_confidence=transcript.confidence)
            await self._speak(read_back, kind="confirm", turn=turn, endpoint_at=item.endpoint_at)
            await self._taken_back(turn)
            return
        await self._converse(turn, transcript.text, metadata, item.endpoint_at)

    async def _on_confirmation_answer(
        self, turn: TurnRecord, transcript: Transcript, metadata: dict[str, Any], endpoint_at: float
    ) -> None:
        """The caller answers "Did you say ...?": yes -> act on what was read back; no -> ask again; anything else
        is a new request."""
        try:
            answer, held_text, held_turn = await self._read_back.answer(transcript.text)
        except NluUnavailable as e:
            turn.error = f"nlu: {e}"
            await self._fault_handoff("dialogue server unavailable", turn, "dialogue")
            return
        self._event("confirm_answered", turn=held_turn.index, answer=answer.value)
        if answer is Answer.YES:
            turn.confirms_turn = held_turn.index
            metadata = {**metadata, "confirmed": True, "asr": {**metadata["asr"], "confirmed_by_caller": True}}
            await self._converse(turn, held_text, metadata, endpoint_at)
        elif answer is Answer.NO:
            turn.decision, turn.reply = str(READ_BACK_DENIED), self._say.confirm_denied
            await self._speak(turn.reply, kind="confirm", turn=turn, endpoint_at=endpoint_at)
        else:
            await self._converse(turn, transcript.text, metadata, endpoint_at)

    def _new_turn(self, started_ms: int, end_ms: int, input: str = "speech") -> TurnRecord:
        """The record of a new turn; after a reply taken back, the turn those words opened, now with all of them."""
        reopened, self._reopened = self._reopened, None
        again = reopened if input == "speech" and self.record.turns and self.record.turns[-1] is reopened else None
        turn = TurnRecord(
            index=again.index if again is not None else len(self.record.turns) + 1,
            speech_started_ms=started_ms, speech_end_ms=end_ms, input=input,
            taken_back=again.taken_back if again is not None else None,
        )  # fmt: skip
        if again is not None:
            self.record.turns[-1] = turn
        else:
            self.record.turns.append(turn)
        TURN.set(turn.index)  # the dialogue task's log lines name the turn from here on
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
        if (reply := self._open_reply(turn)) is not None:
            reply.told = True  # from here on, a reply taken back is also forgotten by the dialogue
        try:
            result: DialogueTurn = await self._rasa.respond(text, self.call_sid, metadata)
        except NluUnavailable as e:
            log.error("call %s: dialogue failed: %s", self.call_sid, e)
            turn.error = f"nlu: {e}"
            await self._fault_handoff("dialogue server unavailable", turn, "dialogue")
            return
        turn.understood(result)
        if not result.details and result.intent not in self._parts.smalltalk:
            # Every request but small talk is decided by a custom action, whose message carries the decision. None
            # came: the action server failed, and Rasa carried on with only what its rules say ("anything else?").
            log.error("call %s: turn %d (%s) got no decision from the action server", self.call_sid, turn.index,
                      result.intent)  # fmt: skip
            turn.error = "actions: no decision from the action server"
            await self._fault_handoff("action server unavailable", turn, "actions")
            return
        turn.decision, turn.reply = str(result.decision), result.reply
        if await self._taken_back(turn):  # the caller went on while the dialogue decided
            return
        log.info("call %s: turn %d: intent=%s (%.2f) decision=%s", self.call_sid, turn.index, result.intent,
                 result.confidence, result.decision, extra={"event": "turn_decided"})  # fmt: skip
        if result.decision.kind == "answer":
            self.record.answered_topics.append(result.decision.target)
        routing = result.decision.kind == "route"
        await self._speak(
            result.reply, kind=f"turn-{turn.index}", turn=turn, endpoint_at=endpoint_at, interruptible=not routing
        )
        if await self._taken_back(turn):  # ... or as its reply began
            if result.decision.kind == "answer":
                self.record.answered_topics.pop()
            return
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
        """Say ``text`` (playback sends it sentence by sentence); return when the caller heard it all or interrupted
        it. Every TTS engine failing ends in the apology and a handoff."""
        prompt = Prompt(kind, split_sentences(text), interruptible, protected=protected, turn=turn)
        if turn is not None and (reply := self._open_reply(turn)) is not None:
            reply.prompt = prompt
            if reply.went_on_at_ms is not None:  # the caller went on before it began: nothing of it is said
                self._playback.withdraw(prompt)
        questions = [s for s in prompt.sentences if s.rstrip().endswith("?")]
        self._last_question = questions[-1] if questions else None  # what the caller's next turn may answer
        if turn is not None:
            self._turn_decided(turn)
        if not prompt.sentences:
            return prompt
        if self.state is not CallState.GREETING:
            self._states.enter(CallState.SPEAKING)
        try:
            await self._playback.speak(prompt, self._parts.voice, endpoint_at)
        except TtsError as e:
            log.error("call %s: every TTS engine failed: %s", self.call_sid, e)
            if turn is not None:
                turn.error = f"tts: {e}"
            await self._fault_handoff("speech synthesis failed", turn, "tts")
            return prompt
        said = prompt.heard_text if prompt.interrupted is not None else text
        if said:
            self.record.said.append(redact_text(said))
        return prompt

    # --- a reply taken back ----------------------------------------------------------------------------------

    def _open_reply(self, turn: TurnRecord) -> OpenReply | None:
        """The reply to ``turn`` while it may still be taken back."""
        return self._open if self._open is not None and self._open.turn is turn else None

    def _caller_spoke(self, at_ms: int) -> None:
        """The caller's voice is back (speech started at ``at_ms``, stream time). Soon after words whose reply they
        have heard little or none of, they are going on with the same turn: the reply is withdrawn now, and the
        dialogue task takes the rest back when it next looks (``_taken_back``)."""
        reply, policy = self._open, self._parts.turn_taking
        if reply is None or reply.went_on_at_ms is not None:
            return
        prompt = reply.prompt
        started = prompt.started_ms if prompt is not None else None
        over = prompt is not None and (prompt.finished.is_set() or prompt.interrupted is not None)
        end_ms = reply.item.utterance.speech_end_ms
        if over or not went_on_before_reply_heard(
            at_ms, end_ms, started, policy.unfinished_wait_ms, policy.take_back_heard_ms
        ):
            self._open = None  # the reply stands: what the caller says now is a turn of its own
            return
        reply.went_on_at_ms, reply.heard_ms = at_ms, max(0, at_ms - started) if started is not None else 0
        if prompt is not None:
            self._playback.withdraw(prompt)

    async def _taken_back(self, turn: TurnRecord) -> bool:
        """Whether the caller went on after ``turn``'s words and its reply was taken back. If so, the dialogue
        forgets the words (a rewind), the turn stays open with no decision (its record says what was taken back),
        and the words wait for what the caller is saying now, to be decided with it as one turn."""
        reply = self._open_reply(turn)
        if reply is None or reply.went_on_at_ms is None:
            return False
        self._open = None
        if reply.told:
            try:
                await self._rasa.take_back(self.call_sid)
            except NluUnavailable as e:  # the dialogue keeps the first words as a turn; the whole comes next
                log.error("call %s: the dialogue could not take turn %d back: %s", self.call_sid, turn.index, e)
                self._event("take_back_failed", turn=turn.index, error=str(e)[:200])
        if turn.decision == str(READ_BACK):
            self._read_back.forget()
        self._last_question = reply.question_before
        taken_back = {
            "decision": turn.decision,
            "went_on_ms": reply.went_on_at_ms - turn.speech_end_ms,
            "reply_heard_ms": reply.heard_ms,
        }
        self._event(TAKEN_BACK_EVENT, turn=turn.index, **taken_back)
        log.info("call %s: turn %d: the caller went on; reply (%s) taken back", self.call_sid, turn.index,
                 turn.decision)  # fmt: skip
        reopened = TurnRecord(
            index=turn.index, speech_started_ms=turn.speech_started_ms, speech_end_ms=turn.speech_end_ms,
            transcript=turn.transcript, asr_confidence=turn.asr_confidence, taken_back=taken_back,
        )  # fmt: skip
        assert self.record.turns[turn.index - 1] is turn
        self.record.turns[turn.index - 1] = self._reopened = reopened
        self._turn_decided(reopened)  # the store forgets the decision too
        self._listener.hold_again(reply.transcript, reply.item)
        return True

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
        log.info("call %s: handed off to queue %s (%s)", self.call_sid, queue, reason, extra={"event": "handed_off"})
        self._states.enter(CallState.HANDED_OFF)
        self.finished.set()

    def _turn_decided(self, turn: TurnRecord) -> None:
        if self._on_turn is not None:
            self._on_turn(self.call_sid, turn)

    async def _fault_handoff(self, reason: str, turn: TurnRecord | None, part: str) -> None:
        """Never leave the caller in silence: apologise (pre-synthesised audio) and route to a person. ``part``:
        what failed (asr, dialogue, actions, tts, session; ``slow``: no reply in time), as the call's ``fault``
        event and the metrics name it."""
        if self.finished.is_set():
            return
        self._event(FAULT_EVENT, part=part)
        log.warning("call %s: %s fault: %s; apology and handoff", self.call_sid, part, reason, extra={"event": "fault"})
        if turn is not None:
            self._turn_decided(turn)
        current = self._playback.current
        if current is not None and current.playing:
            self._playback.interrupt(current, cause="fault")
        slow = part == SLOW
        await self._playback.play(self._parts.ready.too_slow if slow else self._parts.ready.apology, kind="apology")
        self.record.said.append(self._say.too_slow if slow else self._say.apology)
        self._hand_off(FALLBACK_QUEUE, reason, turn, fault=True)


def _audio_span(item: SpeechInput) -> tuple[int, int]:
    """Stream times (ms) of all the audio of ``item``'s utterance, pre-roll and tail included."""
    utterance = item.utterance
    return utterance.audio_started_ms, utterance.speech_end_ms + Endpointer.TAIL_FRAMES * FRAME_MS


def _caller_silent_since(item: CallerInput) -> float:
    """When (perf_counter) the caller last spoke or pressed a key before this input: the silence they hear since."""
    if isinstance(item, SpeechInput):
        return item.endpoint_at - max(0, item.endpoint_ms - item.utterance.speech_end_ms) / 1000
    if isinstance(item, KeyInput):
        return item.at
    return time.perf_counter()
