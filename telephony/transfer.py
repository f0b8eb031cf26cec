"""A routed call after the assistant: its packet written, the live call moved to the expert queue, and what the
experts did with it (TaskRouter events, <Enqueue>/<Dial> action callbacks) recorded for handling times."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from twilio.twiml.voice_response import VoiceResponse

from analytics.journal import HandoffSaved, TaskEventAdded
from analytics.store import CALL_ID_PATTERN, CallStore, utcnow
from analytics.writer import StoreWriter
from foundation.routing_table import RoutingTable
from foundation.vocabulary import FALLBACK_QUEUE, QUEUES
from telephony.call_control import CallControl, QueueTable, fallback_twiml, hangup_twiml, queue_twiml
from telephony.call_record import CallRecord
from telephony.handoff import PacketInvalid, build_packet

log = logging.getLogger(__name__)

REPEAT_LOOKUP_TIMEOUT_S = 2.0  # the repeat-caller flag is not worth keeping a caller from their expert
AddEvent = Callable[[TaskEventAdded], None]  # written through the StoreWriter

# TaskRouter event types -> our event kinds (the rest are not about handling time and are ignored).
TASKROUTER_EVENTS = {
    "task.created": "created",
    "reservation.accepted": "accepted",
    "task.wrapup": "wrapup",
    "task.completed": "completed",
    "task.canceled": "canceled",
}
QUEUE_FAILURES = {"error", "system-error", "queue-full"}  # <Enqueue> results after which a person must be dialled
DIAL_ANSWERED = {"completed", "answered"}


class BadEvent(ValueError):
    """A callback we cannot make sense of (its parameters are wrong): answered 400, nothing recorded."""


@dataclass(frozen=True)
class TransferUrls:
    handoff: str  # the call's handoff TwiML
    events: str
    agent: str  # the agent screen for the call


async def previous_calls_7d(record: CallRecord, caller_key: str, store: CallStore) -> int:
    """Calls from the same number in the 7 days before this one; a slow or absent database must not hold the caller
    back: then 0 (unknown)."""
    try:
        return await asyncio.wait_for(
            asyncio.to_thread(store.previous_calls, caller_key, record.call_sid, record.started_at),
            REPEAT_LOOKUP_TIMEOUT_S,
        )
    except (SQLAlchemyError, TimeoutError) as e:
        log.error("call %s: repeat-caller lookup failed: %r", record.call_sid, e)
        return 0


async def hand_over(
    record: CallRecord,
    previous: int,
    writer: StoreWriter,
    vocabulary: RoutingTable,
    control: CallControl | None,
    language: str,
    urls: TransferUrls,
) -> None:
    """Build, validate and store the packet of a routed call (``previous``: the number's calls in the 7 days
    before), then move the live call to its queue."""
    assert record.handoff is not None
    sid = record.call_sid
    try:
        record.packet = build_packet(
            record.as_dict(),
            vocabulary,
            handed_off_at=record.handoff.at,
            previous_calls_7d=previous,
            language=language,
            agent_url=urls.agent,
        )
    except (PacketInvalid, KeyError, TypeError) as e:  # a bug of ours: the caller still reaches a person
        log.exception("call %s: no handoff packet (%s); the call goes to the fallback number", sid, e)
    if record.packet is not None:
        writer.put(HandoffSaved(sid, record.packet))
    if control is None:
        record.delivery = "stream_end"  # the voice webhook's redirect takes the call to the handoff URL
        return
    record.delivery = await control.route(sid, urls.handoff, urls.events)
    writer.put(TaskEventAdded(sid, record.handoff.queue, f"redirect_{record.delivery}", "gateway"))


def transfer_twiml(
    call_sid: str,
    record: CallRecord | None,
    store: CallStore,
    table: QueueTable,
    events_url: str,
    caller: tuple[str, str] = ("", ""),
) -> str:
    """What a call still on the line does next: its queue (with the packet), a hang-up after the caller's goodbye,
    or — for anything else, including a call this gateway knows nothing of — a person on the fallback number.
    A call another gateway held and never settled (it died) is marked interrupted here, and recorded with
    ``caller`` (masked number, caller key) if nothing of it reached the store: Twilio only comes here once the
    call's stream has ended."""
    if record is not None:
        packet, farewell, delivery = record.packet, record.farewell, record.delivery
    else:
        try:
            row = store.call(call_sid)
        except SQLAlchemyError as e:  # the database is out: a person on the fallback number, never an error
            log.error("call %s: its record could not be read for the handoff: %s", call_sid, e)
            return fallback_twiml(table, call_sid, events_url)
        packet = row.packet if row else None
        farewell = bool(row and row.record and row.record.get("farewell"))
        delivery = str(row.record.get("delivery", "")) if row and row.record else ""
        if row is None or row.status == "in_progress":
            queue = str(packet["queue"]) if packet is not None else FALLBACK_QUEUE
            try:
                if store.stream_lost(call_sid, f"routed:{queue}", *caller):
                    worker = row.worker if row is not None else "nothing of it stored"
                    log.warning("call %s: its gateway (%s) left it unsettled; marked interrupted", call_sid, worker)
            except SQLAlchemyError as e:
                log.error("call %s: could not mark the call interrupted: %s", call_sid, e)
    if packet is not None and delivery != "fallback":
        return queue_twiml(packet, table, events_url)
    if farewell:
        return hangup_twiml()
    return fallback_twiml(table, call_sid, events_url)


def _queue(value: str | None) -> str:
    if value not in QUEUES:
        raise BadEvent(f"unknown queue {value!r}")
    return value


def _call_id(value: str | None) -> str:
    if not value or not CALL_ID_PATTERN.match(value):
        raise BadEvent(f"bad call id {value!r}")
    return value


def record_expert_event(
    add_event: AddEvent,
    table: QueueTable,
    events_url: str,
    query: dict[str, str],
    form: dict[str, str],
    lines_busy: str,
) -> str:
    """Record one callback; return the TwiML Twilio should run next (action callbacks) or an empty response."""
    source = query.get("source")
    if source == "enqueue":
        return _enqueue_result(
            add_event, table, events_url, _call_id(query.get("call")), _queue(query.get("queue")), form
        )
    if source == "dial":
        return _dial_result(add_event, table, events_url, query, form, lines_busy)
    if "EventType" in form:
        _taskrouter_event(add_event, form)
        return str(VoiceResponse())
    raise BadEvent("neither a TaskRouter event nor an action callback")


def _enqueue_result(
    add_event: AddEvent, table: QueueTable, events_url: str, call: str, queue: str, form: dict[str, str]
) -> str:
    result = form.get("QueueResult", "")
    details = {"queue_result": result, "queue_time_s": form.get("QueueTime")}
    if result in QUEUE_FAILURES:
        add_event(TaskEventAdded(call, queue, "failed", "enqueue", details=details))
        log.error("call %s: queue %s failed (%s); dialling the fallback number", call, queue, result)
        return fallback_twiml(table, call, events_url)
    add_event(TaskEventAdded(call, queue, "left_queue", "enqueue", details=details))
    return hangup_twiml()


def _dial_result(
    add_event: AddEvent,
    table: QueueTable,
    events_url: str,
    query: dict[str, str],
    form: dict[str, str],
    lines_busy: str,  # said before the line closes when even the fallback number did not answer
) -> str:
    call, queue = _call_id(query.get("call")), _queue(query.get("queue"))
    status = form.get("DialCallStatus", "")
    details = {"dial_status": status, "fallback": query.get("fallback") == "1"}
    if status in DIAL_ANSWERED:
        try:
            duration = float(form.get("DialCallDuration", "0"))
        except ValueError as e:
            raise BadEvent("DialCallDuration is not a number") from e
        now = utcnow()
        add_event(
            TaskEventAdded(call, queue, "accepted", "dial", at=now - timedelta(seconds=duration), details=details)
        )
        add_event(TaskEventAdded(call, queue, "completed", "dial", at=now, handled_s=duration, details=details))
        return hangup_twiml()
    add_event(TaskEventAdded(call, queue, "failed", "dial", details=details))
    if query.get("fallback") != "1":
        log.error("call %s: dialling queue %s failed (%s); dialling the fallback number", call, queue, status)
        return fallback_twiml(table, call, events_url)
    log.error("call %s: the fallback number did not answer (%s)", call, status)
    response = VoiceResponse()
    response.say(lines_busy)
    response.hangup()
    return str(response)


def _taskrouter_event(add_event: AddEvent, form: dict[str, str]) -> None:
    kind = TASKROUTER_EVENTS.get(form["EventType"])
    if kind is None:
        return
    try:
        attributes: dict[str, Any] = json.loads(form.get("TaskAttributes") or "{}")
    except json.JSONDecodeError as e:
        raise BadEvent("TaskAttributes is not JSON") from e
    if not isinstance(attributes, dict) or "call_id" not in attributes:
        log.info("TaskRouter %s for a task that is not one of ours was ignored", form["EventType"])
        return
    try:
        at = datetime.fromtimestamp(int(form["Timestamp"]), UTC) if form.get("Timestamp") else utcnow()
    except (ValueError, OverflowError) as e:
        raise BadEvent("Timestamp is not epoch seconds") from e
    add_event(
        TaskEventAdded(
            _call_id(str(attributes["call_id"])),
            _queue(str(attributes.get("queue"))),
            kind,
            "taskrouter",
            at=at,
            task_sid=form.get("TaskSid"),
            worker=form.get("WorkerName") or form.get("WorkerSid"),
            details={"event": form["EventType"], "task_queue": form.get("TaskQueueName")},
        )
    )
