"""Moving a live call to its expert queue with the twilio library: the queue table, the TwiML, the REST redirect.

On a routing decision the gateway redirects the call (REST ``calls(sid).update``) to its own handoff URL, which
answers with TwiML that enqueues the call into the queue's TaskRouter workflow (the handoff packet as the task's
attributes) or dials the queue's number or SIP address. Twilio API errors and timeouts are retried with backoff;
after the last attempt the call is sent to the fallback number. Should even that fail, the voice webhook's TwiML
carries on once the media stream closes, and redirects the call to the same handoff URL: the caller is never dropped.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlencode

import requests
import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import Dial, Enqueue, VoiceResponse

from foundation.settings import TwilioSettings
from foundation.vocabulary import FALLBACK_QUEUE, QUEUES
from telephony.handoff import task_attributes

log = logging.getLogger(__name__)

E164 = r"^\+[1-9]\d{6,14}$"
# A redirect of a call that is no longer in progress fails with this code: the caller has hung up.
CALL_NOT_IN_PROGRESS = 21220


class TaskRouterTarget(BaseModel):
    workflow_sid: str = Field(pattern=r"^WW[0-9a-fA-F]{32}$")
    priority: int = Field(0, ge=0)
    timeout_s: int = Field(1200, ge=1, le=86400)


class DialTarget(BaseModel):
    number: str | None = Field(None, pattern=E164)
    sip: str | None = Field(None, pattern=r"^sips?:[^\s<>]+$")
    timeout_s: int = Field(60, ge=5, le=600)

    @model_validator(mode="after")
    def _one_address(self) -> DialTarget:
        if (self.number is None) == (self.sip is None):
            raise ValueError("dial needs exactly one of number and sip")
        return self


class QueueDelivery(BaseModel):
    taskrouter: TaskRouterTarget | None = None
    dial: DialTarget | None = None

    @model_validator(mode="after")
    def _one_way(self) -> QueueDelivery:
        if (self.taskrouter is None) == (self.dial is None):
            raise ValueError("a queue is reached by exactly one of taskrouter and dial")
        return self


class QueueTable(BaseModel):
    version: Literal[1]
    fallback_number: str = Field(pattern=E164)
    urgent_priority: int = Field(100, ge=0)
    queues: dict[str, QueueDelivery]

    @model_validator(mode="after")
    def _every_queue(self) -> QueueTable:
        missing, unknown = set(QUEUES) - set(self.queues), set(self.queues) - set(QUEUES)
        if missing or unknown:
            raise ValueError(
                f"queues must be exactly {', '.join(QUEUES)} (missing {missing or '{}'}, unknown {unknown or '{}'})"
            )
        return self

    @classmethod
    def load(cls, path: Path) -> QueueTable:
        try:
            return cls.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError, ValidationError) as e:
            raise ValueError(f"queue table {path}: {e}") from e


def _action(events_url: str, **params: str) -> str:
    return f"{events_url}?{urlencode(params)}"


def queue_twiml(packet: dict[str, Any], table: QueueTable, events_url: str) -> str:
    """TwiML that puts the call through to ``packet['queue']`` with the packet."""
    queue = packet["queue"]
    delivery = table.queues[queue]
    response = VoiceResponse()
    if delivery.taskrouter is not None:
        target = delivery.taskrouter
        priority = max(target.priority, table.urgent_priority) if packet["flags"]["urgent"] else target.priority
        enqueue = Enqueue(
            workflow_sid=target.workflow_sid,
            action=_action(events_url, source="enqueue", queue=queue, call=packet["call_id"]),
            method="POST",
        )
        enqueue.task(task_attributes(packet), priority=priority, timeout=target.timeout_s)
        response.append(enqueue)
    else:
        assert delivery.dial is not None
        response.append(_dial(delivery.dial, queue, packet["call_id"], events_url, packet.get("agent_url")))
    return str(response)


def _dial(
    target: DialTarget, queue: str, call_id: str, events_url: str, agent_url: str | None = None, fallback: bool = False
) -> Dial:
    params = {"source": "dial", "queue": queue, "call": call_id} | ({"fallback": "1"} if fallback else {})
    dial = Dial(action=_action(events_url, **params), method="POST", timeout=target.timeout_s)
    if target.number is not None:
        dial.number(target.number)
    else:
        # The PBX gets the call id (and where its packet is) as SIP headers.
        headers = {"X-Helpline-Call": call_id} | ({"X-Helpline-Packet": agent_url} if agent_url else {})
        dial.sip(f"{target.sip}?{urlencode(headers)}")
    return dial


def fallback_twiml(table: QueueTable, call_id: str, events_url: str) -> str:
    """TwiML that dials a person on the general line."""
    response = VoiceResponse()
    response.append(_dial(DialTarget(number=table.fallback_number), FALLBACK_QUEUE, call_id, events_url, fallback=True))
    return str(response)


def hangup_twiml() -> str:
    response = VoiceResponse()
    response.hangup()
    return str(response)


RedirectResult = Literal["queue", "fallback", "caller_gone", "failed"]


class CallControl:
    """REST call control against Twilio (or its stand-in), with retries and the fallback number."""

    def __init__(self, settings: TwilioSettings, auth_token: str, table: QueueTable):
        assert settings.account_sid is not None
        self._settings = settings
        self.table = table
        self._client = Client(
            settings.account_sid, auth_token, http_client=TwilioHttpClient(timeout=settings.rest_timeout_s)
        )
        self._client.api.base_url = settings.api_base_url.rstrip("/")

    def _update(self, call_sid: str, **changes: str) -> None:
        self._client.calls(call_sid).update(**changes)

    async def route(self, call_sid: str, handoff_url: str, events_url: str) -> RedirectResult:
        """Redirect the call to ``handoff_url`` (its queue's TwiML); on repeated failure, to the fallback number."""
        attempts = self._settings.rest_attempts
        for attempt in range(1, attempts + 1):
            try:
                await asyncio.to_thread(self._update, call_sid, url=handoff_url, method="POST")
                return "queue"
            except TwilioRestException as e:
                if e.code == CALL_NOT_IN_PROGRESS:
                    log.info("call %s: caller hung up before the redirect", call_sid)
                    return "caller_gone"
                if e.status < 500 and e.status != 429:
                    log.error(
                        "call %s: Twilio refused the redirect (HTTP %s, code %s): %s", call_sid, e.status, e.code, e.msg
                    )
                    break
                log.warning("call %s: redirect attempt %d/%d failed: HTTP %s", call_sid, attempt, attempts, e.status)
            except (requests.RequestException, TwilioException) as e:
                log.warning("call %s: redirect attempt %d/%d failed: %s", call_sid, attempt, attempts, e)
            if attempt < attempts:
                await asyncio.sleep(self._settings.rest_backoff_s * 2 ** (attempt - 1))
        try:
            twiml = fallback_twiml(self.table, call_sid, events_url)
            await asyncio.to_thread(self._update, call_sid, twiml=twiml)
            log.warning("call %s: sent to the fallback number after failed redirects", call_sid)
            return "fallback"
        except (TwilioRestException, requests.RequestException, TwilioException) as e:
            log.error("call %s: fallback redirect failed too (%s); the stream's end will redirect it", call_sid, e)
            return "failed"
