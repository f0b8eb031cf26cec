"""The gateway: Twilio's voice webhook, the Media Streams WebSocket and a small call API, as one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from helpline.settings import Settings
from nlu.client import RasaClient
from telephony import prompts
from telephony.routing import KeypadMenu, fixed_sentences, smalltalk_intents
from telephony.session import CallRecord, CallSession
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
    parse_inbound,
)
from voice.asr import AsrEngine, create_asr
from voice.tts import TtsError, create_tts
from voice.tts.base import split_sentences
from voice.tts.registry import FallbackTts

log = logging.getLogger(__name__)

MEDIA_PATH = "/twilio/media"
VOICE_PATH = "/twilio/voice"
KEPT_CALL_RECORDS = 1000


@dataclass
class Runtime:
    """What the gateway process loads once and shares between calls."""

    settings: Settings
    asr: AsrEngine
    tts: FallbackTts
    rasa: RasaClient
    apology_audio: bytes
    validator: RequestValidator
    calls: OrderedDict[str, CallRecord]
    keypad: KeypadMenu | None = None
    smalltalk: frozenset[str] = frozenset()
    voice_warm: threading.Event = field(default_factory=threading.Event)  # fixed sentences synthesised

    def keep(self, record: CallRecord) -> None:
        self.calls[record.call_sid] = record
        while len(self.calls) > KEPT_CALL_RECORDS:
            self.calls.popitem(last=False)


def media_stream_url(settings: Settings) -> str:
    parts = urlsplit(settings.public_base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + MEDIA_PATH, "", ""))


def voice_webhook_url(settings: Settings) -> str:
    return settings.public_base_url + VOICE_PATH


def build_runtime(settings: Settings) -> Runtime:
    asr = create_asr(settings.asr)
    tts = create_tts(settings.tts)
    apology = tts.telephone(prompts.APOLOGY)
    return Runtime(
        settings=settings,
        asr=asr,
        tts=tts,
        rasa=RasaClient(settings.rasa.url, settings.rasa.timeout_s),
        apology_audio=apology,
        validator=RequestValidator(settings.twilio_auth_token),
        calls=OrderedDict(),
        keypad=KeypadMenu.load() if settings.turn_taking.keypad else None,
        smalltalk=smalltalk_intents(),
    )


def prewarm_voice(runtime: Runtime) -> None:
    """Synthesise every fixed sentence into the voice's cache (prompts, menu, answers, responses)."""
    texts = [runtime.keypad.menu_text()] if runtime.keypad else []
    texts += [getattr(prompts, name) for name in dir(prompts) if name.isupper() and "{" not in getattr(prompts, name)]
    sentences = {*fixed_sentences(), *(s for text in texts for s in split_sentences(text))}
    for sentence in sorted(sentences):
        try:
            runtime.tts.telephone(sentence)
        except TtsError as e:  # the call will meet it again and fall back; nothing to do here
            log.warning("could not synthesise %r in advance: %s", sentence, e)
    runtime.voice_warm.set()
    log.info("voice cache warm: %d sentences", len(sentences))


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "testclient"


def create_app(settings: Settings, runtime: Runtime | None = None) -> FastAPI:
    """The ASGI app. Models load at start-up (lifespan) unless a ready ``runtime`` is given."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is None:
            app.state.runtime = await asyncio.to_thread(build_runtime, settings)
        else:
            app.state.runtime = runtime
        # The fixed sentences are synthesised once, in the background: a first caller should not wait for Piper.
        prewarm = asyncio.create_task(asyncio.to_thread(prewarm_voice, app.state.runtime))
        log.info(
            "gateway ready: voice webhook %s, media stream %s",
            voice_webhook_url(settings),
            media_stream_url(settings),
        )
        yield
        prewarm.cancel()
        if runtime is None:
            await app.state.runtime.rasa.aclose()

    app = FastAPI(title="Helpline gateway", lifespan=lifespan, docs_url=None, redoc_url=None)

    def rt(request: Request | WebSocket) -> Runtime:
        return request.app.state.runtime  # type: ignore[no-any-return]

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, Any]:
        runtime_ = rt(request)
        return {
            "status": "ok",
            "asr": runtime_.settings.asr.engine,
            "tts": runtime_.tts.primary.name,
            "voice_cache": "warm" if runtime_.voice_warm.is_set() else "warming",
        }

    @app.post(VOICE_PATH)
    async def voice(request: Request) -> Response:
        runtime_ = rt(request)
        form = await request.form()
        params = {k: str(v) for k, v in form.items()}
        url = voice_webhook_url(runtime_.settings)
        if request.url.query:
            url = f"{url}?{request.url.query}"
        signature = request.headers.get("X-Twilio-Signature", "")
        if runtime_.settings.twilio.validate_signatures and not runtime_.validator.validate(url, params, signature):
            log.warning("rejected voice webhook with a missing or wrong signature from %s", request.client)
            raise HTTPException(status_code=403, detail="invalid Twilio signature")
        response = VoiceResponse()
        connect = Connect()
        stream = connect.stream(url=media_stream_url(runtime_.settings))
        for name, key in (("from", "From"), ("to", "To"), ("call_sid", "CallSid")):
            if params.get(key):
                stream.parameter(name=name, value=params[key])
        response.append(connect)
        return Response(content=str(response), media_type="application/xml")

    @app.websocket(MEDIA_PATH)
    async def media(websocket: WebSocket) -> None:
        runtime_ = rt(websocket)
        signature = websocket.headers.get("X-Twilio-Signature", "")
        if runtime_.settings.twilio.validate_signatures and not runtime_.validator.validate(
            media_stream_url(runtime_.settings), {}, signature
        ):
            log.warning("rejected media stream with a missing or wrong signature from %s", websocket.client)
            await websocket.close(code=1008)  # before accept: the client gets HTTP 403
            return
        await websocket.accept()
        await MediaStreamHandler(runtime_, websocket).run()

    @app.get("/api/calls/{call_sid}")
    async def call_record(call_sid: str, request: Request) -> JSONResponse:
        if not _is_loopback(request.client.host if request.client else None):
            raise HTTPException(status_code=403, detail="call records are served on loopback only")
        record = rt(request).calls.get(call_sid)
        if record is None:
            raise HTTPException(status_code=404, detail=f"no call {call_sid}")
        return JSONResponse(record.as_dict())

    return app


class MediaStreamHandler:
    """Reads one Media Streams WebSocket and drives its CallSession until either side ends the call."""

    def __init__(self, runtime: Runtime, websocket: WebSocket):
        self._runtime = runtime
        self._ws = websocket
        self._session: CallSession | None = None
        self._session_started = asyncio.Event()
        self._malformed = 0

    async def run(self) -> None:
        reader = asyncio.create_task(self._read(), name="media-reader")
        finisher = asyncio.create_task(self._wait_finished(), name="media-finisher")
        try:
            await asyncio.wait({reader, finisher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, finisher):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(asyncio.gather(reader, finisher, return_exceptions=True), timeout=5)
            if self._session is not None:
                self._session.record.malformed_messages = self._malformed
                await self._session.close()
                log.info("call %s ended: %s", self._session.call_sid, self._session.record.outcome)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._ws.close()

    async def _wait_finished(self) -> None:
        """Ends when the session finished the bot part (handoff or goodbye); never before a session exists."""
        await self._session_started.wait()
        assert self._session is not None
        await self._session.finished.wait()

    async def _send(self, text: str) -> None:
        await self._ws.send_text(text)

    async def _read(self) -> None:
        while True:
            try:
                text = await self._ws.receive_text()
            except WebSocketDisconnect:
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
            if self._session is None and isinstance(event, Start) and not self._start_session(event):
                return

    def _start_session(self, start: Start) -> bool:
        if start.encoding != SUPPORTED_ENCODING or start.sample_rate != SUPPORTED_RATE or start.channels != 1:
            log.error(
                "call %s: unsupported media format %s/%d/%d",
                start.call_sid,
                start.encoding,
                start.sample_rate,
                start.channels,
            )
            return False
        rt = self._runtime
        self._session = CallSession(
            start,
            rt.settings,
            rt.asr,
            rt.tts,
            rt.rasa,
            rt.apology_audio,
            self._send,
            keypad=rt.keypad,
            smalltalk=rt.smalltalk,
        )
        rt.keep(self._session.record)
        self._session.begin()
        self._session_started.set()
        log.info("call %s started (stream %s)", start.call_sid, start.stream_sid)
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
            if len(event.payload) == 0 or len(event.payload) % 160:
                self._malformed += 1
                log.warning("media stream: media payload of %d bytes is not 20 ms frames", len(event.payload))
                return
            for offset in range(0, len(event.payload), 160):
                session.on_audio(event.payload[offset : offset + 160], event.timestamp_ms + offset // 8)
        elif isinstance(event, Mark):
            session.on_mark(event.name)
        elif isinstance(event, Dtmf):
            session.on_dtmf(event.digit)
