"""Faults injected for real into a line of its own (action server, Rasa server and gateway processes, a call store on
the machine's PostgreSQL behind a port we can close, the Twilio stand-in): the Rasa server stopped (SIGSTOP: slow)
and killed, the action server killed, the database's port closed, Twilio's REST API failing, and the in-process
speech engines failing (fault drills). Whatever breaks, the caller hears the apology and reaches `general` with
what was said so far, or, where the fault does not stop the assistant (the database), is served as usual; and the
call's record is complete in the store once the fault has cleared.

The module's own processes are killed here; the test session's shared line is not touched. Tests run in order: the
Rasa server is killed last.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from analytics.store import CallStore
from foundation.language import load_language
from foundation.settings import Settings
from helpline.services import Stack
from telephony.handoff import validate_packet
from telephony.softphone import Silence, Softphone
from tests.conftest import free_port, fresh_postgres_database, metric, signed_post, spoken
from tests.tcp_proxy import TcpProxy

APOLOGY = load_language("en").prompts.apology

# Its own line, beside the session's shared one: ./test.sh's second worker runs this module (and the scale-out one).
pytestmark = [pytest.mark.rasa, pytest.mark.models, pytest.mark.xdist_group("own-lines")]

ANSWERABLE = "What are your opening hours?"
SECOND = "How do I report a new bank account?"


@dataclass
class FaultLine:
    settings: Settings
    stack: Stack
    db_proxy: TcpProxy
    store: CallStore  # straight to PostgreSQL, not through the proxy: what the store holds, whatever the gateway sees


@pytest.fixture(scope="module")
def line(test_settings: Settings) -> Iterator[FaultLine]:
    with fresh_postgres_database() as url, TcpProxy("127.0.0.1", 5432) as db_proxy:
        proxied = url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{db_proxy.port}/")
        assert proxied != url, url
        settings = test_settings.model_copy(
            update={
                "gateway": test_settings.gateway.model_copy(update={"port": free_port(), "fault_drills": True}),
                "rasa": test_settings.rasa.model_copy(update={"port": free_port(), "actions_port": free_port()}),
                # The stalled recognition's caller is put through within their 20 s of patience.
                "turn_taking": test_settings.turn_taking.model_copy(update={"reply_limit_s": 15.0}),
                "database_url": proxied,
                "log_format": "json",  # as production logs: the fault tests read the gateway's lines
            }
        )
        stack = Stack(settings, ensure_model=False, label=" faults")
        with stack:
            stack.wait_voice_warm(120)
            store = CallStore.open(url)
            try:
                yield FaultLine(settings, stack, db_proxy, store)
            finally:
                store.close()


def _get(url: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return {}
    return response.json() if response.status_code == 200 else {}


def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.2)


async def _decided_turns(settings: Settings, sid: str, n: int, timeout_s: float = 60) -> None:
    """Until the gateway has decided ``n`` turns of call ``sid`` (the call goes on meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while True:
        record = await asyncio.to_thread(_get, f"{settings.gateway_url}/api/calls/{sid}")
        if sum(1 for t in record.get("turns", []) if t.get("decision")) >= n:
            return
        assert time.monotonic() < deadline, f"call {sid}: {n} turn(s) not decided in {timeout_s} s"
        await asyncio.sleep(0.1)


async def _drill(line: FaultLine, part: str, method: str) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        (await http.request(method, f"{line.settings.gateway_url}/drills/{part}")).raise_for_status()


def _new_sid() -> str:
    return "CA" + uuid.uuid4().hex


async def _two_questions_first_decided(line: FaultLine, caller_voice: Any) -> tuple[str, asyncio.Task[Any]]:
    """A call asking ANSWERABLE then SECOND, under way once its first question is decided (the fault comes then)."""
    sid = _new_sid()
    caller = [spoken(caller_voice, ANSWERABLE), spoken(caller_voice, SECOND)]
    call = asyncio.create_task(Softphone(line.settings, speed=2.0).call(caller, call_sid=sid))
    await _decided_turns(line.settings, sid, 1)
    return sid, call


def _assert_apology_then_general(
    result: dict[str, Any], reason: str, context: list[str], apology: str = APOLOGY
) -> dict[str, Any]:
    """The caller heard the apology and was put through to `general`, flagged as a fault, with ``context`` (what
    they had said) in the packet; returns the packet."""
    assert apology in result["said"], result["said"]
    assert result["handoff"]["queue"] == "general" and result["handoff"]["fault"], result["handoff"]
    assert reason in result["handoff"]["reason"], result["handoff"]
    packet = result["packet"]
    validate_packet(packet)
    assert packet["queue"] == "general" and packet["flags"]["fault"] is True
    said = " ".join(t["text"] for t in packet["transcript"]).lower()
    for words in context:
        assert words in said, (words, packet["transcript"])
    return packet


def _assert_stored(line: FaultLine, sid: str, outcome: str, turns: int, timeout_s: float = 30) -> None:
    """The call's record is complete in PostgreSQL: ended, with its outcome, every turn and (routed) its packet."""

    def complete() -> bool:
        call = line.store.call(sid)
        return call is not None and call.status == "ended" and len(line.store.turns(sid)) == turns

    _wait(complete, timeout_s, f"call {sid} complete in the store")
    call = line.store.call(sid)
    assert call.outcome == outcome
    if outcome.startswith("routed") or outcome == "failed":
        assert call.packet is not None and call.packet["call_id"] == sid


async def test_database_port_closed_during_calls_the_callers_are_served_and_nothing_is_lost(line, caller_voice):
    line.db_proxy.close()
    try:
        sid = _new_sid()
        caller = [spoken(caller_voice, ANSWERABLE), spoken(caller_voice, "I want to talk to a person.")]
        result = (await Softphone(line.settings, speed=2.0).call(caller, call_sid=sid)).as_dict()
        # Not a fault for the caller: answered, then put through to a person as asked, while nothing can be stored.
        assert APOLOGY not in result["said"]
        assert result["turns"][0]["decision"] == "answer:opening_hours"
        assert result["outcome"] == "routed:general" and not result["handoff"]["fault"]
        assert line.store.call(sid) is None  # the database really was out of reach
        journal = list((line.settings.data_dir / "journal").glob(f"store-*{line.settings.gateway.port}.jsonl"))
        assert journal and sid in journal[0].read_text(), "the writes wait in the gateway's journal"
        # ... and the monitoring sees it: the store is out of reach and writes are waiting.
        assert metric(line.settings, "helpline_store_outage") == 1
        assert metric(line.settings, "helpline_store_journal_backlog") > 0
    finally:
        line.db_proxy.open()
    _assert_stored(line, sid, "routed:general", turns=2)
    events = [e.kind for e in line.store.task_events(sid)]
    assert events == ["redirect_queue"], events
    assert journal[0].read_text() == ""  # all stored: the journal is empty again
    assert metric(line.settings, "helpline_store_outage") == 0
    assert metric(line.settings, "helpline_store_journal_backlog") == 0


@pytest.mark.parametrize(
    ("part", "reason", "context"),
    [
        # The second question cannot be heard: the packet has what was understood before the fault.
        ("asr", "speech recognition failed", ["opening"]),
        # Both voices (Piper and its espeak-ng fallback) fail: the apology was synthesised when the gateway started.
        ("tts", "speech synthesis failed", ["opening", "bank account"]),
    ],
    ids=["speech recognition", "speech synthesis"],
)
async def test_speech_engine_failing_mid_call(line, caller_voice, part, reason, context):
    faults_before = metric(line.settings, "helpline_faults_total", part=part)
    sid, call = await _two_questions_first_decided(line, caller_voice)
    await _drill(line, part, "POST")
    try:
        result = (await call).as_dict()
    finally:
        await _drill(line, part, "DELETE")
    _assert_apology_then_general(result, reason, context)
    _assert_stored(line, sid, "failed", turns=2)
    assert metric(line.settings, "helpline_faults_total", part=part) == faults_before + 1  # counted by the part
    # The gateway's structured log names the fault, its part, the call and the turn it broke.
    logged = [json.loads(text) for text in line.stack.process("gateway").log_path.read_text().splitlines()
              if text.startswith("{")]  # fmt: skip
    [fault] = [e for e in logged if e["event"] == "fault" and e["call_id"] == sid]
    assert fault["turn"] == 2 and f"{part} fault" in fault["message"], fault
    assert {"call_started", "turn_decided", "call_ended"} <= {e["event"] for e in logged if e["call_id"] == sid}


async def test_recognition_stalled_mid_call_the_caller_is_held_then_put_through(line, caller_voice):
    """A line too far behind to answer (the asr_stall drill: every recognition waits): the caller hears "One moment,
    please." (TURN_TAKING__HOLD_AFTER_S), waits on through it, and when no reply came in __REPLY_LIMIT_S is told so
    and put through to `general` with what they said before."""
    holding_before = metric(line.settings, "helpline_holding_phrases_total")
    slow_before = metric(line.settings, "helpline_faults_total", part="slow")
    sid, call = await _two_questions_first_decided(line, caller_voice)
    await _drill(line, "asr_stall", "POST")
    try:
        result = (await call).as_dict()
    finally:
        await _drill(line, "asr_stall", "DELETE")
    say = load_language("en").prompts
    limit = line.settings.turn_taking.reply_limit_s
    _assert_apology_then_general(result, f"no reply within {limit:g} s", ["opening"], apology=say.too_slow)
    assert result["said"][-2:] == [say.holding, say.too_slow]
    second = result["turns"][1]
    assert second["error"] == f"slow: no reply within {limit:g} s" and second["transcript"] == ""
    # The caller's side: the phrase came first and is not counted as the reply (the gap runs on to the next audio).
    assert second["holding_ms"] is not None and second["latency_ms"] > second["holding_ms"], second
    _assert_stored(line, sid, "failed", turns=2)
    # At least this turn's (on a busy machine the first turn's reply may have been slow enough to be held too).
    assert metric(line.settings, "helpline_holding_phrases_total") >= holding_before + 1
    assert metric(line.settings, "helpline_faults_total", part="slow") == slow_before + 1


async def test_dialogue_server_stalled_at_call_start_and_mid_call(line, caller_voice):
    rasa = line.stack.process("rasa server")
    # At the start: no greeting comes from a stalled server; the caller hears the apology after the timeout.
    os.killpg(rasa.process.pid, signal.SIGSTOP)
    try:
        sid = _new_sid()
        result = (await Softphone(line.settings, speed=2.0).call([Silence()], call_sid=sid)).as_dict()
    finally:
        os.killpg(rasa.process.pid, signal.SIGCONT)
    _assert_apology_then_general(result, "dialogue server unavailable at call start", [])
    assert result["said"][0] == APOLOGY
    _assert_stored(line, sid, "failed", turns=0)

    # Mid-call: the first question is answered, the server stalls, the second question meets the timeout.
    sid, call = await _two_questions_first_decided(line, caller_voice)
    os.killpg(rasa.process.pid, signal.SIGSTOP)
    try:
        result = (await call).as_dict()
    finally:
        os.killpg(rasa.process.pid, signal.SIGCONT)
    _assert_apology_then_general(result, "dialogue server unavailable", ["opening", "bank account"])
    assert result["turns"][1]["error"].startswith("nlu:")
    _assert_stored(line, sid, "failed", turns=2)


async def test_action_server_killed_mid_call(line, caller_voice):
    actions = line.stack.process("action server")
    sid, call = await _two_questions_first_decided(line, caller_voice)
    os.killpg(actions.process.pid, signal.SIGKILL)
    actions.process.wait(timeout=10)
    try:
        result = (await call).as_dict()
    finally:
        actions.start()
        _wait(actions.health, 120, "action server back")
    _assert_apology_then_general(result, "action server unavailable", ["opening", "bank account"])
    _assert_stored(line, sid, "failed", turns=2)
    # Back up, the line answers again.
    after = (await Softphone(line.settings, speed=2.0).call([spoken(caller_voice, ANSWERABLE)])).as_dict()
    assert after["turns"][0]["decision"] == "answer:opening_hours" and APOLOGY not in after["said"]


async def test_twilio_rest_api_failing_when_a_call_is_routed(line, caller_voice, twilio_standin):
    attempts = line.settings.twilio.rest_attempts
    twilio_standin.fail_next(500, count=attempts + 1)  # the queue redirect and the fallback redirect both fail
    sid = _new_sid()
    said = "I got a decision about my sickness benefit last week and I want to appeal it."
    result = (await Softphone(line.settings, speed=2.0).call([spoken(caller_voice, said)], call_sid=sid)).as_dict()
    assert result["outcome"] == "routed:appeals"
    assert len(twilio_standin.calls_to(sid)) == attempts + 1
    # The stream has ended: Twilio goes on with the voice webhook's <Redirect> to the handoff URL, which still
    # puts the caller into the appeals queue with the packet.
    answer = signed_post(line.settings, f"/twilio/handoff/{sid}", {"CallSid": sid})
    assert answer.status_code == 200
    enqueue = ET.fromstring(answer.text).find("Enqueue")
    assert enqueue is not None and json.loads(enqueue.find("Task").text)["queue"] == "appeals"
    _assert_stored(line, sid, "routed:appeals", turns=1)


async def test_dialogue_server_killed_mid_call_and_down_at_call_start(line, caller_voice):
    rasa = line.stack.process("rasa server")
    sid, call = await _two_questions_first_decided(line, caller_voice)
    os.killpg(rasa.process.pid, signal.SIGKILL)  # the port closes: connections are refused
    rasa.process.wait(timeout=10)
    result = (await call).as_dict()
    _assert_apology_then_general(result, "dialogue server unavailable", ["opening", "bank account"])
    _assert_stored(line, sid, "failed", turns=2)

    sid = _new_sid()
    result = (await Softphone(line.settings, speed=2.0).call([Silence()], call_sid=sid)).as_dict()
    _assert_apology_then_general(result, "dialogue server unavailable at call start", [])
    _assert_stored(line, sid, "failed", turns=0)
    assert _get(f"{line.settings.gateway_url}/healthz")["status"] == "ok"  # the gateway itself goes on
