"""Routing a call to its expert queue for real: the gateway, Rasa and the models, the twilio library's REST client
against a stand-in of Twilio's API on loopback, signed webhooks, and the agent screen behind its login."""

import asyncio
import contextlib
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest

from analytics.store import CallStore
from telephony.call_control import CallControl, QueueTable
from telephony.handoff import validate_packet
from telephony.softphone import Softphone
from tests.conftest import add_user, signed_post, spoken
from voice.wer import wer

pytestmark = [pytest.mark.rasa, pytest.mark.models]

EVENTS = "/twilio/events"


@contextlib.contextmanager
def log_in(settings, username: str, password: str) -> Iterator[httpx.Client]:
    """A browser-like client, logged in through the login form (its CSRF cookie and field included)."""
    with httpx.Client(base_url=settings.gateway_url, timeout=10) as client:
        form = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        answer = client.post("/login", data={"username": username, "password": password, "csrf_token": csrf})
        assert answer.status_code == 303, answer.text
        yield client


async def test_appeal_call_reaches_the_appeals_queue_with_its_packet_and_the_agent_sees_it(
    stack, caller_voice, twilio_standin
):
    said = "I got a decision about my sickness benefit last week and I want to appeal it."
    result = (await Softphone(stack, speed=2.0).call([spoken(caller_voice, said)])).as_dict()
    sid = result["call_sid"]
    heard = [(t.get("transcript"), t.get("intent"), t.get("decision")) for t in result["turns"]]
    assert result["outcome"] == "routed:appeals", (heard, [e["kind"] for e in result["events"]])
    assert result["delivery"] == "queue"

    # The live call was redirected (REST, authenticated) to our handoff TwiML, which Twilio then fetched.
    redirect = twilio_standin.wait_for_twiml(sid)
    assert redirect.authorised
    assert redirect.form["Url"] == f"{stack.public_base_url}/twilio/handoff/{sid}"
    assert redirect.fetch_status == 200
    enqueue = ET.fromstring(redirect.fetched_twiml).find("Enqueue")
    table = QueueTable.load(stack.twilio.queues_file)
    assert enqueue.get("workflowSid") == table.queues["appeals"].taskrouter.workflow_sid
    packet = json.loads(enqueue.find("Task").text)
    validate_packet(packet)
    assert packet["call_id"] == sid and packet["queue"] == "appeals"
    assert packet["intent"]["name"] == "appeal_decision"
    assert wer(said, packet["transcript"][0]["text"]) <= 0.25, packet["transcript"]
    assert packet["transcript"][0]["asr_confidence"] > 0.5
    assert packet["caller"].count("*") >= 6  # the number is masked
    assert "appeal" in packet["summary"].lower()
    assert packet["assistant_said"][0].startswith("Hello") and "automated assistant" in packet["assistant_said"][0]
    await asyncio.to_thread(expert_takes_the_call, stack, packet)


def expert_takes_the_call(stack, packet) -> None:
    sid = packet["call_id"]
    # An expert takes the task and completes it (TaskRouter's event callbacks, signed).
    now = int(time.time())
    for event, at in (("task.created", now + 1), ("reservation.accepted", now + 30), ("task.completed", now + 330)):
        answer = signed_post(
            stack,
            EVENTS,
            {"EventType": event, "TaskSid": "WT" + "a" * 32, "TaskAttributes": json.dumps(packet),
             "WorkerName": "expert-7", "Timestamp": str(at)},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
    record = httpx.get(f"{stack.gateway_url}/api/calls/{sid}", timeout=10).json()
    assert [e["kind"] for e in record["expert_events"]] == ["redirect_queue", "created", "accepted", "completed"]
    assert record["expert_events"][-1]["handled_s"] == 300.0
    handling = httpx.get(f"{stack.gateway_url}/api/handling", timeout=10).json()["queues"]
    assert any(q["queue"] == "appeals" and q["calls"] >= 1 for q in handling)
    figures = httpx.get(f"{stack.gateway_url}/api/kpis", timeout=10).json()
    assert figures["outcomes"]["routed"] >= 1
    assert any(r["queue"] == "appeals" and r["reason"] == "appeal_decision" for r in figures["routing_by_queue"])
    assert figures["handling_time"]["calls_with_expert_time"] >= 1
    assert httpx.get(f"{stack.gateway_url}/api/kpis?start=yesterday", timeout=10).status_code == 400

    # The agent screen: login first, then the packet as a page.
    page_url = f"{stack.gateway_url}/agent/calls/{sid}"
    anonymous = httpx.get(page_url, timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    add_user(stack, "agent.anna", "agent", "appeals expert passphrase")
    with log_in(stack, "agent.anna", "appeals expert passphrase") as agent:
        page = agent.get(f"/agent/calls/{sid}")
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        text = page.text
        assert "Call for appeals" in text
        assert packet["transcript"][0]["text"].replace("'", "&#39;") in text
        assert "appeal_decision" in text and "300 s" in text
        assert packet["caller"] in text
        listing = agent.get("/agent/calls")
        assert sid in listing.text
    add_user(stack, "trainer.tor", "trainer", "trainer passphrase 1")
    with log_in(stack, "trainer.tor", "trainer passphrase 1") as trainer:
        assert trainer.get(f"/agent/calls/{sid}").status_code == 403


def test_voice_webhook_redirects_a_call_whose_stream_ends_to_its_handoff(stack):
    answer = signed_post(stack, "/twilio/voice", {"CallSid": "CA" + "b" * 32, "From": "+46701234567"})
    redirect = ET.fromstring(answer.text).find("Redirect")
    assert redirect.text == f"{stack.public_base_url}/twilio/handoff/CA{'b' * 32}"
    # A call the gateway knows nothing of (it restarted mid-call, say) goes to a person, not to silence.
    handoff = signed_post(stack, f"/twilio/handoff/CA{'b' * 32}", {"CallSid": "CA" + "b" * 32, "From": "+46701234567"})
    table = QueueTable.load(stack.twilio.queues_file)
    assert ET.fromstring(handoff.text).find("Dial/Number").text == table.fallback_number
    store = CallStore.open(stack.database, upgrade=False)  # and the call is on record, where it went included
    row = store.call("CA" + "b" * 32)
    store.close()
    assert (row.status, row.outcome, row.caller) == ("interrupted", "routed:general", "+46*******67")
    unsigned = httpx.post(f"{stack.gateway_url}/twilio/handoff/CA{'b' * 32}", data={"CallSid": "x"}, timeout=10)
    assert unsigned.status_code == 403


def test_queue_and_dial_failures_go_to_the_fallback_number(stack):
    table = QueueTable.load(stack.twilio.queues_file)
    call = "CA" + "c" * 32
    failed_queue = signed_post(stack, EVENTS, {"QueueResult": "system-error", "QueueTime": "3"},
                               query=f"source=enqueue&queue=appeals&call={call}")  # fmt: skip
    assert ET.fromstring(failed_queue.text).find("Dial/Number").text == table.fallback_number
    bridged = signed_post(stack, EVENTS, {"QueueResult": "bridged"}, query=f"source=enqueue&queue=appeals&call={call}")
    assert ET.fromstring(bridged.text).find("Hangup") is not None
    no_answer = signed_post(
        stack, EVENTS, {"DialCallStatus": "no-answer"}, query=f"source=dial&queue=fraud&call={call}"
    )
    assert ET.fromstring(no_answer.text).find("Dial/Number").text == table.fallback_number
    last_resort = signed_post(stack, EVENTS, {"DialCallStatus": "busy"},
                              query=f"source=dial&queue=general&call={call}&fallback=1")  # fmt: skip
    assert "lines are busy" in ET.fromstring(last_resort.text).find("Say").text
    talked = signed_post(stack, EVENTS, {"DialCallStatus": "completed", "DialCallDuration": "42"},
                         query=f"source=dial&queue=fraud&call={call}")  # fmt: skip
    assert ET.fromstring(talked.text).find("Hangup") is not None
    bad = signed_post(stack, EVENTS, {"QueueResult": "bridged"}, query=f"source=enqueue&queue=sales&call={call}")
    assert bad.status_code == 400
    unsigned = httpx.post(f"{stack.gateway_url}{EVENTS}", data={"EventType": "task.created"}, timeout=10)
    assert unsigned.status_code == 403


@pytest.fixture
def call_control(test_settings, twilio_standin):
    return CallControl(
        test_settings.twilio, twilio_standin.auth_token, QueueTable.load(test_settings.twilio.queues_file)
    )


HANDOFF = "https://helpline.example/twilio/handoff/CA1"
EVENTS_URL = "https://helpline.example/twilio/events"


async def test_twilio_errors_are_retried_with_backoff(call_control, twilio_standin):
    call = "CA" + "d" * 32
    twilio_standin.fail_next(503, count=2)
    assert await call_control.route(call, HANDOFF, EVENTS_URL) == "queue"
    assert [r.status for r in twilio_standin.calls_to(call)] == [503, 503, 200]


async def test_persistent_errors_and_timeouts_end_at_the_fallback_number(call_control, twilio_standin):
    call = "CA" + "e" * 32
    twilio_standin.fail_next(500, count=3)
    assert await call_control.route(call, HANDOFF, EVENTS_URL) == "fallback"
    last = twilio_standin.calls_to(call)[-1]
    assert "Url" not in last.form
    assert call_control.table.fallback_number in last.form["Twiml"]

    slow = "CA" + "f" * 32
    twilio_standin.fail_next(0, count=3, delay_s=1.5)  # longer than the client's 1 s timeout
    assert await call_control.route(slow, HANDOFF, EVENTS_URL) == "fallback"
    assert len(twilio_standin.calls_to(slow)) == 4


async def test_wrong_credentials_are_not_retried(test_settings, twilio_standin):
    control = CallControl(test_settings.twilio, "not-the-token", QueueTable.load(test_settings.twilio.queues_file))
    call = "CA" + "9" * 32
    assert await control.route(call, HANDOFF, EVENTS_URL) == "failed"  # the stream's end will redirect it
    assert [r.status for r in twilio_standin.calls_to(call)] == [401, 401]
