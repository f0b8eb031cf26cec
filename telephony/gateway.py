"""The gateway: Twilio's voice webhook, the Media Streams WebSocket and a small call API, as one ASGI app."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import ipaddress
import logging
import re
import socket
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from analytics import dashboard, kpis, web
from analytics.auth import Accounts
from analytics.store import CallStore
from analytics.writer import StoreWriter
from helpline.redaction import caller_key, mask_phone_number
from helpline.settings import Settings
from nlu.asr_context import AsrVocabulary
from nlu.client import RasaClient
from telephony import prompts
from telephony.call_control import CallControl, QueueTable
from telephony.drills import PARTS as DRILL_PARTS
from telephony.drills import DrillAsr, Drills, DrillTts
from telephony.handoff import RoutingVocabulary
from telephony.routing import KeypadMenu, fixed_sentences, smalltalk_intents
from telephony.session import CallRecord, CallSession
from telephony.transfer import BadEvent, TransferUrls, hand_over, record_expert_event, transfer_twiml
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
HANDOFF_PATH = "/twilio/handoff"  # + /<call sid>: the TwiML that puts a call through to its queue
EVENTS_PATH = "/twilio/events"  # TaskRouter event callbacks, <Enqueue>/<Dial> action callbacks
AGENT_PATH = "/agent/calls"
KEPT_CALL_RECORDS = 1000
MAX_MEDIA_PAYLOAD = 8000  # bytes of mu-law in one media message: 1 s (Twilio sends 20 ms, 160 bytes)


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
    store: CallStore
    accounts: Accounts
    queue_table: QueueTable
    vocabulary: RoutingVocabulary
    call_control: CallControl | None = None  # None: no Twilio account configured (no REST call control)
    worker: str = ""  # this gateway, as the call store knows it (host:port)
    writer: StoreWriter = field(init=False)  # every call-store write of the calls, journaled (analytics/writer.py)
    keypad: KeypadMenu | None = None
    smalltalk: frozenset[str] = frozenset()
    recognition: AsrVocabulary | None = None  # contextual biasing of speech recognition (ASR__BIASING)
    voice_warm: threading.Event = field(default_factory=threading.Event)  # fixed sentences synthesised
    drills: Drills | None = None  # fault drills, when enabled
    active_calls: set[str] = field(default_factory=set)  # call sids with a live media stream here

    def keep(self, record: CallRecord) -> None:
        self.calls[record.call_sid] = record
        while len(self.calls) > KEPT_CALL_RECORDS:
            self.calls.popitem(last=False)


def media_stream_url(settings: Settings) -> str:
    parts = urlsplit(settings.public_base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + MEDIA_PATH, "", ""))


def public_url(settings: Settings, path: str) -> str:
    """``path`` on the base URL Twilio reaches us at (what its signatures are computed over)."""
    return settings.public_base_url + path


def voice_webhook_url(settings: Settings) -> str:
    return public_url(settings, VOICE_PATH)


def build_runtime(settings: Settings) -> Runtime:
    queue_table = QueueTable.load(settings.twilio.queues_file)  # a broken table stops the start, not a call
    store = CallStore.open(settings.database)
    web_settings = settings.web
    accounts = Accounts(
        store,
        session_ttl=timedelta(hours=web_settings.session_hours),
        max_failures=web_settings.login_max_failures,
        lockout=timedelta(minutes=web_settings.lockout_minutes),
    )
    call_control = (
        CallControl(settings.twilio, settings.twilio_auth_token, queue_table) if settings.twilio.account_sid else None
    )
    asr: AsrEngine = create_asr(settings.asr)
    tts: FallbackTts = create_tts(settings.tts)
    apology = tts.telephone(prompts.APOLOGY)  # made before any drill can touch the voice: a fault needs it
    drills = None
    if settings.gateway.fault_drills:
        drills = Drills()
        asr, tts = DrillAsr(asr, drills), DrillTts(tts, drills)  # type: ignore[assignment]
        log.warning("fault drills are enabled (HELPLINE_GATEWAY__FAULT_DRILLS): not for a production line")
    return Runtime(
        drills=drills,
        store=store,
        accounts=accounts,
        queue_table=queue_table,
        vocabulary=RoutingVocabulary.load(),
        call_control=call_control,
        worker=f"{socket.gethostname()}:{settings.gateway.port}",
        settings=settings,
        asr=asr,
        tts=tts,
        rasa=RasaClient(settings.rasa.url, settings.rasa.timeout_s, settings.rasa.backup_urls),
        apology_audio=apology,
        validator=RequestValidator(settings.twilio_auth_token),
        calls=OrderedDict(),
        keypad=KeypadMenu.load() if settings.turn_taking.keypad else None,
        smalltalk=smalltalk_intents(),
        recognition=AsrVocabulary.load(settings.asr.language) if settings.asr.biasing else None,
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


STREAM_TOKEN = "stream_token"


def stream_token(runtime: Runtime, call_sid: str) -> str:
    """What the voice webhook gives Twilio to send back in the stream's `start`: a keyed hash of the call id."""
    key = runtime.settings.twilio_auth_token.encode()
    return hmac.new(key, f"stream:{call_sid}".encode(), hashlib.sha256).hexdigest()[:32]


async def call_seen(runtime: Runtime, call_sid: str) -> bool:
    """Whether this call has already had a media stream here or in the shared store (a replay); an unreachable
    store is not a reason to refuse a caller, so then only this gateway's memory counts."""
    if call_sid in runtime.calls:
        return True
    try:
        row = await asyncio.wait_for(asyncio.to_thread(runtime.store.call, call_sid), timeout=2.0)
    except (SQLAlchemyError, TimeoutError):
        return False
    return row is not None


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
        app.state.web = web.WebContext(
            app.state.runtime.store,
            app.state.runtime.accounts,
            settings.public_base_url.startswith("https:"),
            settings.analytics.baseline_aht_s,
            settings.nlu_data_dir,
            settings.domain_file,
        )
        runtime_ = app.state.runtime
        worker_name = re.sub(r"[^A-Za-z0-9_.-]", "_", runtime_.worker)
        runtime_.writer = StoreWriter(runtime_.store, settings.data_dir / "journal" / f"store-{worker_name}.jsonl")
        runtime_.writer.start()  # first what an earlier run left unstored, then the calls it held are marked
        runtime_.writer.put("mark_interrupted", runtime_.worker)
        if app.state.runtime.call_control is None:
            log.warning("no Twilio account configured: routed calls reach their queue when the media stream ends")
        # The fixed sentences are synthesised once, in the background: a first caller should not wait for Piper.
        prewarm = asyncio.create_task(asyncio.to_thread(prewarm_voice, app.state.runtime))
        log.info(
            "gateway ready: voice webhook %s, media stream %s",
            voice_webhook_url(settings),
            media_stream_url(settings),
        )
        yield
        prewarm.cancel()
        await runtime_.writer.stop()
        if runtime is None:
            await app.state.runtime.rasa.aclose()
            app.state.runtime.store.close()

    app = FastAPI(title="Helpline gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(web.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each bad field and why, without echoing what was sent (it may be an attack or personal data)."""
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    app.include_router(dashboard.router)

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
            "calls_in_progress": len(runtime_.active_calls),
            "tasks": len(asyncio.all_tasks()),
            "store_writes_waiting": runtime_.writer.pending,
        }

    @app.api_route("/drills/{part}", methods=["POST", "DELETE"])
    async def drill(part: str, request: Request) -> dict[str, Any]:
        """Arm (POST) or disarm (DELETE) a fault drill; 404 unless drills are enabled, 403 from another host."""
        drills = rt(request).drills
        if drills is None:
            raise HTTPException(status_code=404, detail="fault drills are not enabled")
        if not _is_loopback(request.client.host if request.client else None):
            raise HTTPException(status_code=403, detail="drills are armed from the gateway's own host only")
        if part not in DRILL_PARTS:
            raise HTTPException(status_code=400, detail=f"unknown part {part!r}; one of {', '.join(DRILL_PARTS)}")
        if request.method == "POST":
            drills.arm(part)
        else:
            drills.disarm(part)
        return {"drills": drills.state}

    async def signed_form(request: Request, path: str) -> dict[str, str]:
        """The form of a webhook from Twilio, or 403 when its signature (over our public URL) is missing or wrong."""
        runtime_ = rt(request)
        form = await request.form()
        params = {k: str(v) for k, v in form.items()}
        url = public_url(runtime_.settings, path)
        if request.url.query:
            url = f"{url}?{request.url.query}"
        signature = request.headers.get("X-Twilio-Signature", "")
        if runtime_.settings.twilio.validate_signatures and not runtime_.validator.validate(url, params, signature):
            log.warning("rejected %s with a missing or wrong signature from %s", path, request.client)
            raise HTTPException(status_code=403, detail="invalid Twilio signature")
        return params

    def twiml(text: str) -> Response:
        return Response(content=text, media_type="application/xml")

    @app.post(VOICE_PATH)
    async def voice(request: Request) -> Response:
        params = await signed_form(request, VOICE_PATH)
        runtime_ = rt(request)
        settings_ = runtime_.settings
        call_sid = params.get("CallSid", "")
        if call_sid and await call_seen(runtime_, call_sid):
            log.warning("refused a replayed voice webhook for call %s from %s", call_sid, request.client)
            raise HTTPException(status_code=403, detail="this call has already been answered")
        response = VoiceResponse()
        connect = Connect()
        stream = connect.stream(url=media_stream_url(settings_))
        for name, key in (("from", "From"), ("to", "To"), ("call_sid", "CallSid")):
            if params.get(key):
                stream.parameter(name=name, value=params[key])
        if call_sid:  # binds the stream to this call: a start for any other call, or a second one, is refused
            stream.parameter(name=STREAM_TOKEN, value=stream_token(runtime_, call_sid))
        response.append(connect)
        # Twilio carries on here once the stream ends. A caller who hung up is gone; one still on the line is put
        # through to wherever the assistant decided (or to a person if it could not), never dropped.
        if params.get("CallSid"):
            response.redirect(public_url(settings_, f"{HANDOFF_PATH}/{params['CallSid']}"), method="POST")
        return twiml(str(response))

    @app.post(HANDOFF_PATH + "/{call_sid}")
    async def handoff(call_sid: str, request: Request) -> Response:
        params = await signed_form(request, f"{HANDOFF_PATH}/{call_sid}")
        runtime_ = rt(request)
        events_url = public_url(runtime_.settings, EVENTS_PATH)
        number = params.get("From", "")  # Twilio's webhooks name the caller: for a call nothing else knows of
        caller = (mask_phone_number(number), caller_key(number, runtime_.settings.caller_key_secret))
        record = runtime_.calls.get(call_sid)
        store, table = runtime_.store, runtime_.queue_table
        text = await asyncio.to_thread(transfer_twiml, call_sid, record, store, table, events_url, caller)
        return twiml(text)

    @app.post(EVENTS_PATH)
    async def events(request: Request) -> Response:
        params = await signed_form(request, EVENTS_PATH)
        runtime_ = rt(request)
        events_url = public_url(runtime_.settings, EVENTS_PATH)
        try:  # stored through the journal: a database outage does not stop the caller's next step
            text = record_expert_event(
                functools.partial(runtime_.writer.put, "add_task_event"),
                runtime_.queue_table,
                events_url,
                dict(request.query_params),
                params,
            )
        except BadEvent as e:
            log.warning("rejected an event callback: %s", e)
            raise HTTPException(status_code=400, detail=str(e)) from e
        return twiml(text)

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
        runtime_ = rt(request)
        record = runtime_.calls.get(call_sid)
        if record is None:
            raise HTTPException(status_code=404, detail=f"no call {call_sid}")
        try:
            events_ = await asyncio.to_thread(runtime_.store.task_events, call_sid)
        except SQLAlchemyError as e:  # the record itself is in memory; the experts' events wait for the database
            log.error("call %s: expert events not readable: %s", call_sid, e)
            events_ = []
        return JSONResponse(
            record.as_dict()
            | {
                "expert_events": [
                    {"kind": e.kind, "at": e.at.isoformat(), "source": e.source, "handled_s": e.handled_s}
                    for e in events_
                ]
            }
        )

    @app.get("/api/kpis")
    async def kpi_summary(request: Request, start: str | None = None, end: str | None = None) -> JSONResponse:
        """The line's KPIs over [start, end) (YYYY-MM-DD, UTC; default the last 7 days), from the call store."""
        if not _is_loopback(request.client.host if request.client else None):
            raise HTTPException(status_code=403, detail="served on loopback only")
        try:
            period = kpis.period_of(start, end)
        except ValueError as e:
            raise HTTPException(status_code=400, detail=str(e)) from e
        runtime_ = rt(request)

        def compute() -> dict[str, Any]:
            with runtime_.store.sessions() as db:
                return kpis.summary(db, period, runtime_.settings.analytics.baseline_aht_s)

        return JSONResponse(await asyncio.to_thread(compute))

    @app.get("/api/handling")
    async def handling(request: Request) -> JSONResponse:
        """Expert handling time per queue (accepted -> completed), from the call store."""
        if not _is_loopback(request.client.host if request.client else None):
            raise HTTPException(status_code=403, detail="served on loopback only")
        return JSONResponse({"queues": await asyncio.to_thread(rt(request).store.handling_by_queue)})

    return app


class MediaStreamHandler:
    """Reads one Media Streams WebSocket and drives its CallSession until either side ends the call."""

    def __init__(self, runtime: Runtime, websocket: WebSocket):
        self._runtime = runtime
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
                self._runtime.active_calls.discard(self._session.call_sid)
                await self._end_call(self._session, bot_finished)
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await self._ws.close()

    async def _end_call(self, session: CallSession, bot_finished: bool) -> None:
        """Settle the record; a routed call still on the line is moved to its queue before the stream closes (once
        it closes, Twilio follows the voice webhook's redirect instead)."""
        rt = self._runtime
        record = session.record
        record.malformed_messages = self._malformed
        await session.close()
        log.info("call %s ended: %s", session.call_sid, record.outcome)
        if bot_finished and record.handoff is not None:
            urls = TransferUrls(
                handoff=public_url(rt.settings, f"{HANDOFF_PATH}/{record.call_sid}"),
                events=public_url(rt.settings, EVENTS_PATH),
                agent=public_url(rt.settings, f"{AGENT_PATH}/{record.call_sid}"),
            )
            await hand_over(
                record,
                self._caller_key,
                rt.store,
                rt.writer,
                rt.vocabulary,
                rt.call_control,
                rt.settings.asr.language,
                urls,
            )
        rt.writer.put("call_ended", record.as_dict())

    async def _wait_finished(self) -> None:
        """Ends when the session finished the bot part (handoff or goodbye); never before a session exists."""
        await self._session_started.wait()
        assert self._session is not None
        await self._session.finished.wait()

    async def _send(self, text: str) -> None:
        await self._ws.send_text(text)

    async def _read(self) -> None:
        idle_s = self._runtime.settings.gateway.stream_idle_timeout_s
        while True:
            try:
                text = await asyncio.wait_for(self._ws.receive_text(), timeout=idle_s)
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
        rt = self._runtime
        if rt.settings.twilio.validate_signatures:
            token = start.custom_parameters.get(STREAM_TOKEN, "")
            if not hmac.compare_digest(token, stream_token(rt, start.call_sid)):
                log.error("call %s: stream refused: its start does not carry this call's stream token", start.call_sid)
                return False
            if await call_seen(rt, start.call_sid):
                log.error("call %s: stream refused: this call already had a stream (a replay)", start.call_sid)
                return False
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
            recognition=rt.recognition,
            on_turn=lambda sid, turn: rt.writer.put("save_turn", sid, dict(vars(turn))),
        )
        rt.keep(self._session.record)
        rt.active_calls.add(start.call_sid)
        record = self._session.record
        self._caller_key = caller_key(start.custom_parameters.get("from", ""), rt.settings.caller_key_secret)
        # Written at once (a repeat caller is recognised even if this call ends badly), but never waited for.
        rt.writer.put("call_started", record.call_sid, record.caller, self._caller_key, record.started_at, rt.worker)
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
