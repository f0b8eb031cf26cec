"""One Media Streams WebSocket: Twilio's messages in, the call's session driven, its audio, marks and clears out."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import uuid
from collections.abc import Awaitable, Callable

from fastapi import WebSocket, WebSocketDisconnect

from analytics.journal import CallEnded, CallStarted, RecordingSaved, TurnSaved
from foundation.log_context import CALL_ID
from foundation.redaction import caller_key
from nlu.sentiment import call_mood
from telephony.call_record import TurnRecord
from telephony.line import (
    AGENT_PATH,
    EVENTS_PATH,
    HANDOFF_PATH,
    STREAM_TOKEN,
    Line,
    call_seen,
    public_url,
    stream_token,
)
from telephony.recording import Recorded
from telephony.session import CallSession
from telephony.transfer import TransferUrls, hand_over, previous_calls_7d
from telephony.transport import CallStart
from telephony.twilio_media import (
    SUPPORTED_ENCODING,
    SUPPORTED_RATE,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaProtocolError,
    Start,
    Stop,
    clear_message,
    mark_message,
    media_message,
    parse_inbound,
)

log = logging.getLogger(__name__)

MAX_MEDIA_PAYLOAD = 8000  # bytes of mu-law in one media message: 1 s (Twilio sends 20 ms, 160 bytes)


class TwilioTransport:
    """The session's way out (telephony/transport.py) as Twilio Media Streams messages on one stream."""

    def __init__(self, stream_sid: str, send_text: Callable[[str], Awaitable[None]]):
        self._stream_sid = stream_sid
        self._send_text = send_text

    async def send_audio(self, mulaw: bytes) -> None:
        await self._send_text(media_message(self._stream_sid, mulaw))

    async def send_mark(self, name: str) -> None:
        await self._send_text(mark_message(self._stream_sid, name))

    async def clear(self) -> None:
        await self._send_text(clear_message(self._stream_sid))


class MediaStreamHandler:
    """Reads one Media Streams WebSocket and drives its CallSession until either side ends the call."""

    def __init__(self, line: Line, websocket: WebSocket):
        self._line = line
        self._ws = websocket
        self._session: CallSession | None = None
        self._session_started = asyncio.Event()
        self._malformed = 0
        self._caller_key = ""

    async def run(self) -> None:
        reader = asyncio.create_task(self._read(), name="media-reader")
        finisher = asyncio.create_task(self._wait_finished(), name="media-finisher")
        bot_finished = False
        try:
            done, _ = await asyncio.wait({reader, finisher}, return_when=asyncio.FIRST_COMPLETED)
            bot_finished = finisher in done
        finally:
            for task in (reader, finisher):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.gather(reader, finisher, return_exceptions=True), timeout=5)
            if self._session is not None:
                self._line.active_calls.discard(self._session.call_sid)
                await self._end_call(self._session, bot_finished)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._ws.close()

    async def _end_call(self, session: CallSession, bot_finished: bool) -> None:
        """Settle the record; a routed call still on the line is moved to its queue before the stream closes (once
        it closes, Twilio follows the voice webhook's redirect instead)."""
        line = self._line
        record = session.record
        record.malformed_messages = self._malformed
        await session.close()
        log.info("call %s ended: %s", session.call_sid, record.outcome,
                 extra={"event": "call_ended", "call_id": session.call_sid})  # fmt: skip
        previous = await previous_calls_7d(record, self._caller_key, line.store)
        record.mood = call_mood([vars(t) for t in record.turns], previous, line.vocabulary.person_intents).as_dict()
        if bot_finished and record.handoff is not None:
            urls = TransferUrls(
                handoff=public_url(line.settings, f"{HANDOFF_PATH}/{record.call_sid}"),
                events=public_url(line.settings, EVENTS_PATH),
                agent=public_url(line.settings, f"{AGENT_PATH}/{record.call_sid}"),
            )
            await hand_over(
                record,
                previous,
                line.writer,
                line.vocabulary,
                line.call_control,
                line.settings.asr.language,
                urls,
            )
        recorded = await self._keep_recording(session)
        line.writer.put(CallEnded(record.as_dict()))
        if recorded is not None:
            line.writer.put(RecordingSaved(record.call_sid, *recorded))
        line.metrics.call_ended(record)

    async def _keep_recording(self, session: CallSession) -> tuple[str, float, int] | None:
        """The call's recording written to the data directory for the store (path, seconds, passages silenced), when
        the call was recorded and the caller heard the greeting say so; None otherwise."""
        recording = session.recording
        if recording is None:
            return None
        if not recording.notice_heard:
            session.note("recording_discarded", reason="the caller did not hear the recording notice")
            return None
        path = self._line.settings.data_dir / "recordings" / f"{uuid.uuid4().hex}.wav"  # not named by what Twilio sent

        def write() -> Recorded:
            recorded = recording.finish()
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
                out.write(recorded.wav)
            return recorded

        try:
            recorded = await asyncio.to_thread(write)
        except OSError as e:
            log.error("call %s: its recording could not be written: %s", session.call_sid, e)
            session.note("recording_failed", error=str(e)[:200])
            return None
        session.note("recorded", seconds=recorded.seconds, silenced=len(recorded.silenced))
        return str(path), recorded.seconds, len(recorded.silenced)

    def _turn_decided(self, call_sid: str, turn: TurnRecord) -> None:
        self._line.writer.put(TurnSaved(call_sid, dict(vars(turn))))
        self._line.metrics.turn_decided(turn)

    async def _wait_finished(self) -> None:
        """Ends when the session finished the bot part (handoff or goodbye); never before a session exists."""
        await self._session_started.wait()
        assert self._session is not None
        await self._session.finished.wait()

    async def _send(self, text: str) -> None:
        await self._ws.send_text(text)

    async def _read(self) -> None:
        idle_s = self._line.settings.gateway.stream_idle_timeout_s
        while True:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that lands as a frame
                # arrives, so a call the assistant had finished (handed off) kept reading until the caller hung up.
                async with asyncio.timeout(idle_s):
                    text = await self._ws.receive_text()
            except WebSocketDisconnect:
                return
            except TimeoutError:  # no `stop` will come: the far end is gone
                log.warning("media stream: nothing received for %.0f s; the call is ended", idle_s)
                if self._session is not None:
                    self._session.note("stream_went_silent", after_s=idle_s)
                return
            except (KeyError, RuntimeError) as e:  # a binary frame, or the socket already closed
                self._malformed += 1
                log.warning("media stream: skipped a frame that is not text: %s", e)
                continue
            try:
                event = parse_inbound(text)
            except MediaProtocolError as e:
                self._malformed += 1
                log.warning("media stream: skipped malformed message: %s", e)
                continue
            if isinstance(event, Stop):
                return
            self._dispatch(event)
            if self._session is None and isinstance(event, Start) and not await self._start_session(event):
                return

    async def _start_session(self, start: Start) -> bool:
        if start.encoding != SUPPORTED_ENCODING or start.sample_rate != SUPPORTED_RATE or start.channels != 1:
            log.error(
                "call %s: unsupported media format %s/%d/%d",
                start.call_sid,
                start.encoding,
                start.sample_rate,
                start.channels,
            )
            return False
        line = self._line
        if line.settings.twilio.validate_signatures:
            token = start.custom_parameters.get(STREAM_TOKEN, "")
            if not hmac.compare_digest(token, stream_token(line, start.call_sid)):
                log.error("call %s: stream refused: its start does not carry this call's stream token", start.call_sid)
                return False
            if await call_seen(line, start.call_sid):
                log.error("call %s: stream refused: this call already had a stream (a replay)", start.call_sid)
                return False
        CALL_ID.set(start.call_sid)  # what this task and the tasks it starts log for the call names it
        self._session = CallSession(
            CallStart(start.call_sid, start.stream_sid, start.custom_parameters.get("from", "")),
            line.call_parts(),
            TwilioTransport(start.stream_sid, self._send),
            on_turn=self._turn_decided,
        )
        line.keep(self._session.record)
        line.active_calls.add(start.call_sid)
        record = self._session.record
        self._caller_key = caller_key(start.custom_parameters.get("from", ""), line.settings.caller_key_secret)
        # Written at once (a repeat caller is recognised even if this call ends badly), but never waited for.
        line.writer.put(CallStarted(record.call_sid, record.caller, self._caller_key, record.started_at, line.worker))
        self._session.begin()
        self._session_started.set()
        log.info("call %s started (stream %s)", start.call_sid, start.stream_sid, extra={"event": "call_started"})
        return True

    def _dispatch(self, event: Connected | Start | Media | Dtmf | Mark) -> None:
        session = self._session
        if isinstance(event, Connected | Start):
            if isinstance(event, Start) and session is not None:
                self._malformed += 1
                log.warning("media stream: a second start event was ignored")
            return
        if session is None:
            self._malformed += 1
            log.warning("media stream: %s before start was ignored", type(event).__name__)
            return
        if event.stream_sid != session.stream_sid:
            self._malformed += 1
            log.warning("media stream: message for another stream %s was ignored", event.stream_sid)
            return
        if isinstance(event, Media):
            if len(event.payload) == 0 or len(event.payload) % 160 or len(event.payload) > MAX_MEDIA_PAYLOAD:
                self._malformed += 1
                size = len(event.payload)
                log.warning("media stream: a media payload of %d bytes is not whole 20 ms frames (<= 1 s)", size)
                return
            for offset in range(0, len(event.payload), 160):
                session.on_audio(event.payload[offset : offset + 160], event.timestamp_ms + offset // 8)
        elif isinstance(event, Mark):
            session.on_mark(event.name)
        elif isinstance(event, Dtmf):
            session.on_dtmf(event.digit)
