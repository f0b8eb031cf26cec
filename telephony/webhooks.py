"""Twilio's side of the gateway: the voice webhook, the Media Streams WebSocket, the handoff TwiML, expert events,
and the loopback-only fault drills. Every webhook's signature is checked over our public URL."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, WebSocket
from fastapi.responses import Response
from starlette.requests import HTTPConnection
from twilio.twiml.voice_response import Connect, VoiceResponse

from foundation.redaction import caller_key, mask_phone_number
from telephony.drills import PARTS as DRILL_PARTS
from telephony.line import (
    EVENTS_PATH,
    HANDOFF_PATH,
    MEDIA_PATH,
    STREAM_TOKEN,
    VOICE_PATH,
    Line,
    call_seen,
    media_stream_url,
    public_url,
    stream_token,
)
from telephony.media_stream import MediaStreamHandler
from telephony.transfer import BadEvent, record_expert_event, transfer_twiml

log = logging.getLogger(__name__)


def line_of(connection: HTTPConnection) -> Line:
    """The gateway's line (telephony/line.py), loaded at start-up."""
    return connection.app.state.line  # type: ignore[no-any-return]


def is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "testclient"


def loopback_only(request: Request) -> None:
    """403 unless the request comes from this machine (operators' and tests' endpoints, never the public)."""
    if not is_loopback(request.client.host if request.client else None):
        raise HTTPException(status_code=403, detail=f"{request.url.path} is served on loopback only")


CurrentLine = Annotated[Line, Depends(line_of)]
router = APIRouter()


async def signed_form(request: Request, line: Line, path: str) -> dict[str, str]:
    """The form of a webhook from Twilio, or 403 when its signature (over our public URL) is missing or wrong."""
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    url = public_url(line.settings, path)
    if request.url.query:
        url = f"{url}?{request.url.query}"
    signature = request.headers.get("X-Twilio-Signature", "")
    if line.settings.twilio.validate_signatures and not line.validator.validate(url, params, signature):
        log.warning("rejected %s with a missing or wrong signature from %s", path, request.client)
        raise HTTPException(status_code=403, detail="invalid Twilio signature")
    return params


def twiml(text: str) -> Response:
    return Response(content=text, media_type="application/xml")


@router.post(VOICE_PATH)
async def voice(request: Request, line: CurrentLine) -> Response:
    params = await signed_form(request, line, VOICE_PATH)
    call_sid = params.get("CallSid", "")
    if call_sid and await call_seen(line, call_sid):
        log.warning("refused a replayed voice webhook for call %s from %s", call_sid, request.client)
        raise HTTPException(status_code=403, detail="this call has already been answered")
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=media_stream_url(line.settings))
    for name, key in (("from", "From"), ("to", "To"), ("call_sid", "CallSid")):
        if params.get(key):
            stream.parameter(name=name, value=params[key])
    if call_sid:  # binds the stream to this call: a start for any other call, or a second one, is refused
        stream.parameter(name=STREAM_TOKEN, value=stream_token(line, call_sid))
    response.append(connect)
    # Twilio carries on here once the stream ends. A caller who hung up is gone; one still on the line is put
    # through to wherever the assistant decided (or to a person if it could not), never dropped.
    if call_sid:
        response.redirect(public_url(line.settings, f"{HANDOFF_PATH}/{call_sid}"), method="POST")
    return twiml(str(response))


@router.post(HANDOFF_PATH + "/{call_sid}")
async def handoff(call_sid: str, request: Request, line: CurrentLine) -> Response:
    params = await signed_form(request, line, f"{HANDOFF_PATH}/{call_sid}")
    events_url = public_url(line.settings, EVENTS_PATH)
    number = params.get("From", "")  # Twilio's webhooks name the caller: for a call nothing else knows of
    caller = (mask_phone_number(number), caller_key(number, line.settings.caller_key_secret))
    record = line.calls.get(call_sid)
    text = await asyncio.to_thread(transfer_twiml, call_sid, record, line.store, line.queue_table, events_url, caller)
    return twiml(text)


@router.post(EVENTS_PATH)
async def events(request: Request, line: CurrentLine) -> Response:
    params = await signed_form(request, line, EVENTS_PATH)
    try:  # stored through the journal: a database outage does not stop the caller's next step
        text = record_expert_event(
            line.writer.put,
            line.queue_table,
            public_url(line.settings, EVENTS_PATH),
            dict(request.query_params),
            params,
            line.settings.spoken.prompts.lines_busy,
        )
    except BadEvent as e:
        log.warning("rejected an event callback: %s", e)
        raise HTTPException(status_code=400, detail=str(e)) from e
    return twiml(text)


@router.websocket(MEDIA_PATH)
async def media(websocket: WebSocket, line: CurrentLine) -> None:
    signature = websocket.headers.get("X-Twilio-Signature", "")
    if line.settings.twilio.validate_signatures and not line.validator.validate(
        media_stream_url(line.settings), {}, signature
    ):
        log.warning("rejected media stream with a missing or wrong signature from %s", websocket.client)
        await websocket.close(code=1008)  # before accept: the client gets HTTP 403
        return
    await websocket.accept()
    await MediaStreamHandler(line, websocket).run()


@router.api_route("/drills/{part}", methods=["POST", "DELETE"], dependencies=[Depends(loopback_only)])
async def drill(part: str, request: Request, line: CurrentLine) -> dict[str, Any]:
    """Arm (POST) or disarm (DELETE) a fault drill; 404 unless drills are enabled, 403 from another host."""
    drills = line.drills
    if drills is None:
        raise HTTPException(status_code=404, detail="fault drills are not enabled")
    if part not in DRILL_PARTS:
        raise HTTPException(status_code=400, detail=f"unknown part {part!r}; one of {', '.join(DRILL_PARTS)}")
    if request.method == "POST":
        drills.arm(part)
    else:
        drills.disarm(part)
    return {"drills": drills.state}
