"""The caller's side of the line: the VAD endpointer, recognition started before the end of an utterance (at a
pause, or streaming partial results), barge-in by speech, and the no-input clock. What it hears becomes the
session's inputs: an utterance (``SpeechInput``), a key (``KeyInput``) or a silence (``NoInput``)."""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from foundation.settings import VadSettings
from telephony.call_parts import CallParts
from telephony.call_record import CallRecord
from telephony.guards import heard_noise
from telephony.playback import Playback, Prompt
from telephony.tasks import CallTasks
from telephony.turn_policy import (
    MAX_PENDING_KEYS,
    goes_on_with_the_turn,
    is_backchannel,
    is_listening_noise,
    sounds_unfinished,
    stream_says_done,
)
from voice.asr.base import (
    RecognitionContext,
    Recognitions,
    StreamingAsrEngine,
    Transcript,
    TranscriptStream,
    join_transcripts,
)
from voice.codecs import FRAME_MS, TELEPHONE_RATE, pcm16_to_float, ulaw_decode
from voice.end_of_turn.base import EndOfTurnError
from voice.vad import Endpointer, SpeechPaused, SpeechStarted, UtteranceEnded

log = logging.getLogger(__name__)

DECIDE_SLACK_S = 0.2  # the decision wait ends at most this long after its stream time was due by the wall clock


@dataclass(frozen=True)
class SpeechInput:
    utterance: UtteranceEnded
    endpoint_at: float  # perf_counter() when the endpointer decided the utterance was over
    over: Prompt | None  # the prompt that was playing when the caller started speaking
    barged_in: bool  # the caller's speech stopped that prompt
    transcript: asyncio.Future[Transcript] | None = None  # recognition started at the pause before the end
    over_sentence: int = 0  # the sentence of that prompt that was playing when the caller started
    endpoint_ms: int = 0  # stream time when the endpointer decided the utterance was over


@dataclass(frozen=True)
class KeyInput:
    key: str
    at_ms: int
    at: float


@dataclass(frozen=True)
class NoInput:
    since_ms: int


@dataclass(frozen=True)
class HeldRelease:
    """The caller did not go on after words that sounded unfinished: what was held is the turn."""

    at_ms: int


CallerInput = SpeechInput | KeyInput | NoInput | HeldRelease


class HeardKind(enum.Enum):
    WORDS = "words"  # a turn to act on (a long turn's held pieces joined, when it ends here)
    NOTHING = "nothing"  # no words in the audio
    NOISE = "noise"  # words the recogniser wrote for background talk or noise: not a request
    HELD = "held"  # a piece of a long turn, held for the rest
    UNFINISHED = "unfinished"  # words that stop mid-sentence ("how do I apply for"), held while the caller goes on
    WENT_ON = "went_on"  # the caller spoke again before these words were decided: held, joined with what follows


@dataclass(frozen=True)
class Heard:
    kind: HeardKind
    transcript: Transcript
    item: SpeechInput
    asr_ms: float  # waited for the words after the endpoint


class LongTurn:
    """The pieces of a turn longer than the longest utterance the line takes, held until the caller pauses: then
    the turn is decided whole (a story's request usually comes at its end)."""

    def __init__(self) -> None:
        self._pieces: list[tuple[Transcript, SpeechInput]] = []

    def __bool__(self) -> bool:
        return bool(self._pieces)

    def __len__(self) -> int:
        return len(self._pieces)

    def started_ms(self, otherwise: int) -> int:
        return self._pieces[0][1].utterance.started_ms if self._pieces else otherwise

    def _span_s(self, item: SpeechInput) -> float:
        """Seconds from the first held piece's start (or this piece's, when none is held) to this piece's end."""
        utterance = item.utterance
        return (utterance.speech_end_ms - self.started_ms(otherwise=utterance.started_ms)) / 1000

    def keeps(self, transcript: Transcript, item: SpeechInput, vad: VadSettings) -> bool:
        """Holds this piece when the caller was still talking at the longest utterance the line takes and another
        piece still fits in the longest turn."""
        utterance = item.utterance
        if utterance.truncated and self._span_s(item) + vad.max_utterance_s <= vad.max_turn_s:
            self._pieces.append((transcript, item))
            return True
        return False

    def has_room(self, item: SpeechInput, vad: VadSettings) -> bool:
        """The turn so far, up to this piece, leaves room for more."""
        return self._span_s(item) + 1 <= vad.max_turn_s

    def hold(self, transcript: Transcript, item: SpeechInput, vad: VadSettings) -> bool:
        """Holds this piece (words that sound unfinished) while the turn so far leaves room for more."""
        if not self.has_room(item, vad):
            return False
        self._pieces.append((transcript, item))
        return True

    def audio(self, then: np.ndarray) -> np.ndarray:
        """The held pieces' audio followed by ``then``: the turn so far, as the end-of-turn model should hear it."""
        return np.concatenate([*(item.utterance.pcm for _, item in self._pieces), then]) if self._pieces else then

    def take(self, last: tuple[Transcript, SpeechInput] | None = None) -> tuple[Transcript, SpeechInput]:
        """The held pieces, followed by the last piece if there is one, as one utterance: it began where, and over
        what, the first piece did (a turn whose first words stopped the greeting barged in)."""
        pieces = [*self._pieces, *([last] if last is not None else [])]
        self._pieces = []
        first, final = pieces[0][1], pieces[-1][1]
        began = first.utterance
        whole = replace(
            final,
            utterance=replace(final.utterance, started_ms=began.started_ms, audio_started_ms=began.audio_started_ms),
            over=first.over,
            barged_in=first.barged_in,
            over_sentence=first.over_sentence,
        )
        return join_transcripts([t for t, _ in pieces]), whole


async def _awaited(job: asyncio.Future[Transcript]) -> Transcript:
    """``job`` as a coroutine, for a call's task (cancelling the task cancels the job)."""
    return await job


def transcript_metadata(engine: str, transcript: Transcript) -> dict[str, Any]:
    """What the dialogue is told of how the words were heard."""
    return {
        "engine": engine,
        "confidence": transcript.confidence,
        "no_speech": transcript.no_speech,
        "words": [{"word": w.text, "confidence": round(w.confidence, 3)} for w in transcript.words],
        "alternatives": [{"text": a.text, "confidence": round(a.confidence, 3)} for a in transcript.alternatives],
    }


class Listener:
    """Hears the caller, frame by frame, and puts what it heard on ``inputs``."""

    def __init__(
        self,
        call_sid: str,
        parts: CallParts,
        playback: Playback,
        tasks: CallTasks,
        record: CallRecord,
        context: Callable[[], RecognitionContext | None],
        on_event: Callable[..., None],
        on_speech_started: Callable[[int], None] = lambda at_ms: None,
    ):
        vad, policy, asr = parts.vad, parts.turn_taking, parts.asr
        self._call_sid = call_sid
        self._policy = policy
        self._vad = vad
        self._on_event = on_event
        self._on_speech_started = on_speech_started  # the caller's voice is back (stream time of its first frame)
        self.held = LongTurn()  # pieces of a turn longer than the longest utterance, held until the caller pauses
        self._asr = asr
        self._recognitions: Recognitions | None = parts.recognitions
        self._playback = playback
        self._tasks = tasks
        self.record = record
        self._context = context  # the recogniser's bias for the next utterance
        self._backchannels = frozenset(w.lower() for w in policy.backchannels)
        self._unfinished_endings = parts.spoken.unfinished_endings
        self._release_at_ms: int | None = None  # held unfinished words become the turn at this stream time
        # With an end-of-turn model, a short pause asks it whether the turn is over (and starts recognition); the
        # end silence is then only the longest wait for an unfinished turn.
        self._turn_end = parts.end_of_turn
        self._turn_end_settings = parts.end_of_turn_settings
        semantic = self._turn_end is not None
        end_silence_ms = self._turn_end_settings.max_silence_ms if semantic else vad.end_silence_ms
        pause_ms = self._turn_end_settings.pause_ms if semantic else vad.speculate_after_ms
        detector = parts.speech_detector() if parts.speech_detector is not None else None
        self._endpointer = Endpointer(
            vad.aggressiveness, end_silence_ms, vad.min_speech_ms, vad.max_utterance_s, pause_ms, detector,
            vad.noise_gate_db, vad.noise_end_ms, vad.caller_range_db,
        )  # fmt: skip
        self.inputs: asyncio.Queue[CallerInput] = asyncio.Queue()
        # (pause, the recognition's task, its job on the line's queue)
        self._speculation: (
            tuple[tuple[int, int, int], asyncio.Future[Transcript], asyncio.Future[Transcript] | None] | None
        ) = None
        # Engines with partial results recognise while the caller speaks (no speculation needed then).
        self._streaming: StreamingAsrEngine | None = asr if asr.capabilities.streaming_partials else None  # type: ignore[assignment]
        self._stream: TranscriptStream | None = None
        self._stream_fed: asyncio.Future[None] | None = None  # the last chunk handed to the stream
        self._stream_pending: list[np.ndarray] = []
        self._last_partial = ""
        self._stable_chunks = 0  # chunks fed since the partial result last changed
        self._speech_over: Prompt | None = None  # the prompt the current utterance started over
        self._speech_over_sentence = 0  # ... and which of its sentences was playing then
        self._barged_in = False
        self.stream_ms = 0
        self.listening_since_ms: int | None = None  # the no-input clock runs from here (stream time)
        self._spoke_at_ms: int | None = None  # stream time the caller last started speaking

    @property
    def in_speech(self) -> bool:
        return self._endpointer.in_speech

    @property
    def speech_under_way_from_ms(self) -> int | None:
        """Stream time the caller's utterance under way began (pre-roll included), None when they are not speaking."""
        return self._endpointer.audio_started_ms

    async def hear(self, item: SpeechInput) -> Heard:
        """What ``item`` holds for the dialogue. Raises ``AsrError``."""
        if item.utterance.line_noise:  # the line's own noise at the start of the call: no voice to recognise
            nothing = Transcript("", 0.0, "", len(item.utterance.pcm) / TELEPHONE_RATE, no_speech=1.0)
            return Heard(HeardKind.NOTHING, nothing, item, 0.0)
        transcript, asr_ms = await self._recognise(item)
        noise = not transcript.is_empty and self._heard_noise(transcript)
        if self.held and (transcript.is_empty or noise):
            # The tail of a long turn held nothing of use: the turn is what was held.
            words, joined = self.held.take()
            return Heard(HeardKind.WORDS, words, joined, asr_ms)
        if transcript.is_empty or noise:
            return Heard(HeardKind.NOISE if noise else HeardKind.NOTHING, transcript, item, asr_ms)
        if self.held.keeps(transcript, item, self._vad):
            return Heard(HeardKind.HELD, transcript, item, asr_ms)
        if self._waits_for_the_rest(transcript, item):
            return Heard(HeardKind.UNFINISHED, transcript, item, asr_ms)
        if not self.is_listening_noise(item, transcript.text) and await self._until_decidable(item):
            # The end of the turn is now: the wait is endpointing's, in the turn's figures as in the caller's ear.
            item = replace(item, endpoint_at=time.perf_counter(), endpoint_ms=self.stream_ms)
        if self._went_on(transcript, item):
            return Heard(HeardKind.WENT_ON, transcript, item, asr_ms)
        if self.held:
            transcript, item = self.held.take((transcript, item))
        self._release_at_ms = None
        return Heard(HeardKind.WORDS, transcript, item, asr_ms)

    def _waits_for_the_rest(self, transcript: Transcript, item: SpeechInput) -> bool:
        """Words that stop mid-sentence are held for up to unfinished_wait_ms after the caller's last word: more
        speech joins them into one turn; silence makes them the turn (HeldRelease). Listening noises said over the
        assistant are not held: they let it carry on at once."""
        wait_ms = self._policy.unfinished_wait_ms
        last = transcript.words[-1].confidence if transcript.words else 1.0
        if not wait_ms or not sounds_unfinished(transcript.text, self._unfinished_endings, last):
            return False
        if not self._hold(transcript, item):
            return False
        self._release_at_ms = item.utterance.speech_end_ms + wait_ms
        return True

    def _hold(self, transcript: Transcript, item: SpeechInput) -> bool:
        """Hold these words for what the caller says next, unless they are a listening noise said over the assistant
        (it carries on at once) or the turn so far leaves no room for more."""
        return not self.is_listening_noise(item, transcript.text) and self.held.hold(transcript, item, self._vad)

    def _went_on(self, transcript: Transcript, item: SpeechInput) -> bool:
        """The caller started speaking again within unfinished_wait_ms of these words' end, before the line had
        decided them (their recognition was still running): the pause was inside the turn ("the e-ID login on your
        website ... keeps failing"), whatever the words. They are held like unfinished words, so what the caller is
        saying now joins them and the whole is one turn; the first part is not answered on its own. Not for
        listening noises said over the assistant."""
        wait_ms, end_ms = self._policy.unfinished_wait_ms, item.utterance.speech_end_ms
        speaking = goes_on_with_the_turn(self._spoke_at_ms, end_ms, wait_ms)
        starting = goes_on_with_the_turn(self._endpointer.starting_at_ms(), end_ms, wait_ms)
        if not (speaking or starting) or not self._hold(transcript, item):
            return False
        # Speech under way ends as an utterance of its own, which joins them (or, holding no words, makes them the
        # turn). Voice just heard may yet not be speech: then they are the turn as soon as it has passed.
        self._release_at_ms = None if speaking else self.stream_ms
        return True

    async def _until_decidable(self, item: SpeechInput) -> bool:
        """Words recognised sooner than decide_after_ms after the caller's last word wait until then (stream time) or
        until the caller's voice comes back, so that how much of a pause is seen to be inside the turn does not follow
        the recogniser's speed. Bounded in wall time as well: a stream that stops sending frames holds nothing.
        Under the silence rule only: an end-of-turn model that ends a turn at a short pause has judged it complete.
        True when they waited."""
        wait_ms = self._policy.decide_after_ms
        until_ms = item.utterance.speech_end_ms + wait_ms
        if not wait_ms or self._turn_end is not None or self.stream_ms >= until_ms:
            return False
        deadline = time.perf_counter() + (until_ms - self.stream_ms) / 1000 + DECIDE_SLACK_S
        while self.stream_ms < until_ms and time.perf_counter() < deadline:
            if self._endpointer.in_speech or self._endpointer.starting:
                break
            await asyncio.sleep(FRAME_MS / 1000)
        return True

    def may_hold(self, item: SpeechInput) -> bool:
        """Words decided in ``item`` could still be held for more (the turn so far leaves room)."""
        return self.held.has_room(item, self._vad)

    def hold_again(self, transcript: Transcript, item: SpeechInput) -> None:
        """Words the line had decided, held again: the caller went on after them (the session took its reply back).
        The speech under way ends as an utterance that joins them, or, holding no words, makes them the turn."""
        held = self.held.hold(transcript, item, self._vad)
        assert held, "the session takes a reply back only while the turn has room for more (may_hold)"
        self._release_at_ms = None

    def take_held(self, at_ms: int) -> tuple[Transcript, SpeechInput] | None:
        """The held words as one turn, decided now (at stream time ``at_ms``); None when nothing is held."""
        if not self.held:
            return None
        transcript, item = self.held.take()
        return transcript, replace(item, endpoint_at=time.perf_counter(), endpoint_ms=at_ms)

    def _heard_noise(self, transcript: Transcript) -> bool:
        context = self._context()
        prompt = context.prompt if context is not None else None
        return heard_noise(transcript.text, transcript.confidence, transcript.no_speech, prompt)

    async def _recognise(self, item: SpeechInput) -> tuple[Transcript, float]:
        """The words of ``item`` (its early recognition when one was started) and the milliseconds waited for them
        after the endpoint. Never on the event loop. Raises ``AsrError``."""
        t0 = time.perf_counter()
        if item.transcript is not None:
            transcript = await item.transcript
        else:
            transcript = await self._transcribe(item.utterance.pcm)
        # Its words' times on the call's stream clock (where a recording silences them).
        return transcript.shifted(item.utterance.audio_started_ms / 1000), (time.perf_counter() - t0) * 1000

    async def _transcribe(self, pcm: np.ndarray) -> Transcript:
        """Recognition of ``pcm`` off the event loop (on the line's recognition queue when it has one: a finished
        turn before speculations), biased by the recogniser's context for the next utterance."""
        audio, context = pcm16_to_float(pcm), self._context()
        if self._recognitions is None:
            return await asyncio.to_thread(self._asr.transcribe, audio, TELEPHONE_RATE, context)
        return await self._recognitions.submit(audio, TELEPHONE_RATE, context)

    def is_listening_noise(self, item: SpeechInput, text: str) -> bool:
        """``text``, heard in ``item``, is the caller listening over the assistant, not taking the turn."""
        over = item.over
        over_kind, over_sentences = (over.kind, len(over.sentences)) if over is not None else (None, 0)
        return is_listening_noise(text, over_kind, item.over_sentence, over_sentences, self._backchannels)

    def on_key(self, digit: str) -> None:
        """A key press: it stops an interruptible prompt and waits its turn; a flood beyond MAX_PENDING_KEYS waiting
        inputs is dropped (one event per burst, counting its keys): minutes of work must not queue."""
        if self.inputs.qsize() >= MAX_PENDING_KEYS:
            last = self.record.events[-1] if self.record.events else {}
            if last.get("kind") == "key_dropped":
                last["count"] += 1
            else:
                self._on_event("key_dropped", count=1)
                log.warning("call %s: keys dropped: %d inputs already waiting", self._call_sid, MAX_PENDING_KEYS)
            return
        self.listening_since_ms = None
        prompt = self._playback.current
        if prompt is not None and prompt.interruptible and prompt.playing and prompt.interrupted is None:
            self._playback.interrupt(prompt, cause="key")
        self.inputs.put_nowait(KeyInput(digit, self.stream_ms, time.perf_counter()))

    def on_audio(self, mulaw: bytes, timestamp_ms: int) -> None:
        """One 20 ms frame of the caller's audio (never blocks: recognition runs off the event loop)."""
        self.stream_ms = timestamp_ms
        pcm = ulaw_decode(mulaw)
        started = False
        for event in self._endpointer.feed(pcm, at_ms=timestamp_ms):
            if isinstance(event, SpeechStarted):
                current = self._playback.current
                self._speech_over = current if current is not None and current.playing else None
                self._speech_over_sentence = self._speech_over.heard if self._speech_over is not None else 0
                self._barged_in = False
                self.listening_since_ms = None
                self._release_at_ms = None  # the caller goes on: held words join this utterance
                self._spoke_at_ms = event.at_ms
                self._on_speech_started(event.at_ms)
                if self._streaming is not None:
                    self._stream = self._streaming.stream(TELEPHONE_RATE)
                    self._stream_fed, self._last_partial, self._stable_chunks = None, "", 0
                    self._stream_pending = [self._endpointer.utterance_so_far()]  # this frame included
                    started = True
            elif isinstance(event, SpeechPaused):
                if self._streaming is None:
                    self._speculate(event)
                if self._turn_end is not None:
                    self._judge_turn_end(event)
            elif isinstance(event, UtteranceEnded):
                self._utterance_ended(event)
        if self._stream is not None and self._endpointer.in_speech and not started:
            self._stream_pending.append(pcm)
            if sum(len(c) for c in self._stream_pending) >= TELEPHONE_RATE // 10:  # 100 ms at a time
                self._stream_feed()
        if self._endpointer.in_speech:
            if self._endpointer.voiced_ms >= self._policy.barge_in_min_speech_ms:
                self._barge_in(by="speech_ms")
        elif self._release_at_ms is not None and timestamp_ms >= self._release_at_ms and not self._endpointer.starting:
            self._release_at_ms = None
            self.inputs.put_nowait(HeldRelease(timestamp_ms))
        elif (
            self.listening_since_ms is not None
            and timestamp_ms - self.listening_since_ms >= self._policy.no_input_timeout_s * 1000
        ):
            self.inputs.put_nowait(NoInput(self.listening_since_ms))
            self.listening_since_ms = None

    def _utterance_ended(self, event: UtteranceEnded) -> None:
        if event.line_noise:  # nothing to recognise (see hear); it still ends the "speech" the session waited on
            self._drop_recognition()
            transcript = None
        else:
            transcript = self._stream_final() if self._stream is not None else self._speculated(event)
        self.inputs.put_nowait(
            SpeechInput(
                event,
                time.perf_counter(),
                self._speech_over,
                self._barged_in,
                transcript,
                self._speech_over_sentence,
                self.stream_ms,
            )
        )
        self._speech_over, self._barged_in = None, False

    def _drop_recognition(self) -> None:
        """Stop recognising the utterance that just ended (its early recognition, or its stream): nobody spoke."""
        if self._speculation is not None:
            self._speculation[1].cancel()
            self._speculation = None
        self._stream, self._stream_fed, self._stream_pending = None, None, []

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
                silence, end_silence = self._endpointer.silence_ms, self._endpointer.end_silence_ms
                if stream_says_done(words, stream.segment_closed, self._stable_chunks, silence, end_silence):
                    ended = self._endpointer.end_now()
                    if ended is not None:
                        self.record.stream_endpoints += 1
                        self._utterance_ended(ended)

        self._stream_fed = self._tasks.start(feed(), "stream-feed")

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

        return self._tasks.start(final(), "stream-final")  # a failure is met where it is used

    def _on_partial(self, words: str) -> None:
        """Real words over an interruptible prompt stop it, before the speech-length rule would."""
        real_words = sum(1 for w in words.split() if not is_backchannel(w, self._backchannels))
        log.debug("call %s: partial %r (%d words)", self._call_sid, words, real_words)
        if real_words >= self._policy.barge_in_min_words:
            self._barge_in(by="words")

    def _barge_in(self, by: str) -> None:
        """The caller's speech stops the prompt it started over, if that prompt may be interrupted now."""
        prompt = self._playback.current
        if self._policy.barge_in and prompt is not None and prompt is self._speech_over and prompt.may_barge_in():
            self._barged_in = True
            self._playback.interrupt(prompt, cause="speech", by=by)

    def _speculate(self, pause: SpeechPaused) -> None:
        """Start recognising what was said so far; the end of the utterance may well be this pause. Not while every
        recogniser is busy: then it would take the CPU a finished turn waits for (the turn is recognised when it
        ends)."""
        if self._speculation is not None:  # an earlier pause's guess: the caller went on after it
            self._speculation[1].cancel()
            self._speculation = None
        queued: asyncio.Future[Transcript] | None = None
        if self._recognitions is None:
            recognition = self._transcribe(pause.pcm)
        elif not self._recognitions.has_room():
            self.record.speculations_declined += 1
            return
        else:
            queued = self._recognitions.submit(
                pcm16_to_float(pause.pcm), TELEPHONE_RATE, self._context(), speculative=True
            )
            recognition = _awaited(queued)
        # A failure is met where it is used.
        future = self._tasks.start(recognition, "speculation")
        self._speculation = ((pause.started_ms, pause.speech_end_ms, len(pause.pcm)), future, queued)
        self.record.speculations_started += 1

    def _judge_turn_end(self, pause: SpeechPaused) -> None:
        """Ask the end-of-turn model, off the event loop, whether the caller's turn ended at this pause; end the
        utterance now if it did and the caller is still silent. A model fault falls back to the silence rule for the
        rest of the call."""
        model, threshold = self._turn_end, self._turn_end_settings.threshold
        assert model is not None
        # After held words ("how do I apply for"), the model hears them too: "parental benefit" alone is no turn.
        turn_so_far = self.held.audio(pause.pcm)

        async def judge() -> None:
            t0 = time.perf_counter()
            try:
                probability = await asyncio.to_thread(model.complete, turn_so_far)
            except EndOfTurnError as e:
                log.error("call %s: end-of-turn model failed, the silence rule takes over: %s", self._call_sid, e)
                self._turn_end = None
                self._endpointer.set_end_silence(self._vad.end_silence_ms)
                self._on_event("end_of_turn_failed", error=str(e)[:200])
                return
            complete = probability >= threshold
            self.record.turn_end_judged += 1
            self.record.turn_end_ms += (time.perf_counter() - t0) * 1000
            if complete and self._endpointer.utterance_end_ms() == pause.speech_end_ms:  # still the same pause
                ended = self._endpointer.end_now()
                if ended is not None:
                    self.record.semantic_endpoints += 1
                    self._utterance_ended(ended)

        self._tasks.start(judge(), "end-of-turn")

    def _speculated(self, utterance: UtteranceEnded) -> asyncio.Future[Transcript] | None:
        """The speculative recognition of exactly this utterance, if one was started (the caller did not go on)."""
        speculation, self._speculation = self._speculation, None
        if speculation is None:
            return None
        key, future, queued = speculation
        if key != (utterance.started_ms, utterance.speech_end_ms, len(utterance.pcm)):
            future.cancel()  # the caller spoke again after the pause: not run at all if it has not started
            return None
        if queued is not None and self._recognitions is not None:
            self._recognitions.promote(queued)  # the caller has finished: no longer a guess
        self.record.speculations_used += 1
        return future
