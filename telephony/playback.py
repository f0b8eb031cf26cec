"""What the assistant says, as the caller hears it: prompts sent sentence by sentence with a mark after each, the
marks' echoes telling what was heard, and interruption (the transport's clear)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from foundation.redaction import redact_text
from telephony.call_record import TurnRecord
from telephony.recording import CallRecording
from telephony.tasks import CallTasks
from telephony.transport import FINAL_MARK_SUFFIX, HOLDING_KIND, CallTransport
from voice.codecs import TELEPHONE_RATE, frames
from voice.tts.base import TelephoneVoice, TtsError

log = logging.getLogger(__name__)


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
    started_ms: int | None = None  # stream time the first frame was handed to the transport
    last_mark_ms: int | None = None  # stream time the latest mark came back
    interrupted: dict[str, Any] | None = None

    @property
    def playing(self) -> bool:
        return self.started_ms is not None and not self.finished.is_set()

    def may_barge_in(self) -> bool:
        return self.interruptible and self.playing and self.interrupted is None and self.heard >= self.protected

    def stop(self, cause: str, by: str, at_ms: int, cut_sentence_heard_fraction: float) -> dict[str, Any]:
        """It ends here, cut, whatever is still to be sent or played; returns how (``interrupted``)."""
        self.interrupted = cut = {
            "cause": cause,
            "by": by,  # for speech: "speech_ms" (voiced length), "words" (partial recognition) or "went_on"
            "at_ms": at_ms,
            "heard": redact_text(self.heard_text),
            "unheard": redact_text(self.unheard_text),
            # How far into the sentence that was cut the caller got, estimated from stream time since the last mark.
            "cut_sentence_heard_fraction": round(cut_sentence_heard_fraction, 2),
        }
        self.finished.set()
        return cut

    @property
    def heard_text(self) -> str:
        return " ".join(self.sentences[: self.heard])

    @property
    def unheard_text(self) -> str:
        return " ".join(self.sentences[self.heard :])


class Playback:
    """Sends prompts through the call's transport and follows their marks. ``current`` is what the assistant is
    saying now: what barge-in and keys act on."""

    def __init__(
        self,
        call_sid: str,
        transport: CallTransport,
        tasks: CallTasks,
        stream_ms: Callable[[], int],
        on_event: Callable[..., None],
        recording: CallRecording | None = None,
    ):
        self._call_sid = call_sid
        self._recording = recording  # what the caller heard goes into it
        self._transport = transport
        self._tasks = tasks
        self._stream_ms = stream_ms
        self._on_event = on_event
        self._send_lock = asyncio.Lock()
        self._marks: dict[str, tuple[Prompt, int]] = {}
        self._seq = 0
        self.current: Prompt | None = None
        self.frames_sent = 0  # every frame of audio sent to the caller, from the start of the call
        self.heard_at = 0.0  # when (perf_counter) the caller last heard the assistant: a mark echoed, a prompt cut

    @contextlib.contextmanager
    def playing(self, prompt: Prompt) -> Iterator[None]:
        """``prompt`` is what the assistant is saying until this block ends."""
        self.current = prompt
        try:
            yield
        finally:
            if self.current is prompt:
                self.current = None

    async def speak(self, prompt: Prompt, voice: TelephoneVoice, endpoint_at: float | None = None) -> None:
        """Synthesise the prompt sentence by sentence, sending each as soon as it is ready (the first sentence plays
        while the rest is synthesised), with a mark after each; return when Twilio has played it all or the caller
        interrupted it. Raises ``TtsError`` when every engine failed: nothing more of the prompt is sent."""
        with self.playing(prompt):
            for index, sentence in enumerate(prompt.sentences):
                if prompt.interrupted is not None:
                    break
                t0 = time.perf_counter()
                try:
                    audio = await asyncio.to_thread(voice.telephone, sentence)
                except TtsError:
                    prompt.finished.set()
                    raise
                if prompt.turn is not None:
                    prompt.turn.tts_ms += (time.perf_counter() - t0) * 1000
                await self._send_sentence(prompt, index, audio, endpoint_at)
            await prompt.finished.wait()  # the last mark came back, or the caller interrupted

    async def _send_sentence(self, prompt: Prompt, index: int, audio: bytes, endpoint_at: float | None = None) -> None:
        """One sentence's audio, then its mark; the turn's response time is taken at its first frame."""
        self._seq += 1
        mark = f"{prompt.kind}.{self._seq}"
        if index == len(prompt.sentences) - 1:
            mark += FINAL_MARK_SUFFIX  # the prompt's last sentence: its echo means the caller heard it all
            prompt.final_mark = mark
        self._marks[mark] = (prompt, index)
        prompt.sentence_ms.append(len(audio) // (TELEPHONE_RATE // 1000))
        # A sentence with personal data in it (the caller's number read back) is never recorded.
        private = self._recording is not None and redact_text(prompt.sentences[index]) != prompt.sentences[index]
        async with self._send_lock:
            for frame in frames(audio):
                if prompt.interrupted is not None:
                    self._marks.pop(mark, None)
                    return
                if prompt.started_ms is None:  # from this frame on the caller may hear it: a withdrawal must clear
                    prompt.started_ms = self._stream_ms()
                    if prompt.turn is not None and endpoint_at is not None:
                        prompt.turn.response_ms = round((time.perf_counter() - endpoint_at) * 1000, 1)
                await self._transport.send_audio(frame)
                self.frames_sent += 1
                if self._recording is not None:
                    self._recording.assistant_audio(frame, self._stream_ms(), private)
            await self._transport.send_mark(mark)

    async def play(self, mulaw: bytes, kind: str) -> None:
        """Send ready audio (never interruptible), then wait until it played."""
        prompt = Prompt(kind, [kind], interruptible=False)
        with self.playing(prompt):
            await self._send_sentence(prompt, 0, mulaw)
            await prompt.finished.wait()

    async def hold(self, mulaw: bytes) -> None:
        """Send the holding phrase and return once it is sent, not played: the reply that follows queues behind it.
        It is no prompt (nothing to barge in on or resume) and its mark tells the far end it is not the reply."""
        await self._send_sentence(Prompt(HOLDING_KIND, [HOLDING_KIND], interruptible=False), 0, mulaw)

    def on_mark(self, name: str) -> None:
        entry = self._marks.pop(name, None)
        if entry is None:
            return
        self.heard_at = time.perf_counter()
        prompt, index = entry
        if prompt.interrupted is None:  # marks Twilio returns after a clear were not heard
            prompt.heard = max(prompt.heard, index + 1)
            prompt.last_mark_ms = self._stream_ms()
        if name == prompt.final_mark:
            prompt.finished.set()

    def interrupt(self, prompt: Prompt, cause: str, by: str = "") -> None:
        """Stop the prompt now: Twilio drops what it has buffered; what was heard is what the marks said."""
        now = self._stream_ms()
        self.heard_at = time.perf_counter()
        in_progress = prompt.heard
        fraction = 0.0
        if in_progress < len(prompt.sentence_ms) and prompt.sentence_ms[in_progress] > 0:
            since = prompt.last_mark_ms if prompt.last_mark_ms is not None else prompt.started_ms or 0
            fraction = min(1.0, max(0.0, (now - since) / prompt.sentence_ms[in_progress]))
        cut = prompt.stop(cause, by or cause, now, fraction)
        if prompt.turn is not None:
            prompt.turn.interrupted = cut
        if self._recording is not None:
            self._recording.cleared(now)
        self._on_event("barge_in", prompt=prompt.kind, **cut)
        log.info("call %s: %s stopped the %s prompt", self._call_sid, cause, prompt.kind)
        self._tasks.start(self._clear(), "clear")

    def withdraw(self, prompt: Prompt) -> None:
        """Take ``prompt`` back: the caller went on with their turn. Not sent yet, nothing of it is sent (and there is
        nothing to clear); playing, it stops as for the caller's speech over it."""
        if prompt.started_ms is not None:
            self.interrupt(prompt, cause="speech", by="went_on")
        else:
            prompt.stop("withdrawn", "went_on", self._stream_ms(), 0.0)

    async def _clear(self) -> None:
        async with self._send_lock:
            await self._transport.clear()

    def release(self) -> None:
        """The call ended: no prompt waits for a mark any more."""
        for prompt, _ in self._marks.values():
            prompt.finished.set()
