"""The handoff packet, the queue table and the TwiML, without I/O."""

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from foundation.routing_table import RoutingTable
from nlu.sentiment import call_mood
from telephony.call_control import QUEUES, QueueTable, fallback_twiml, queue_twiml
from telephony.call_record import CallRecord, HandoffRequested, TurnRecord
from telephony.handoff import (
    MAX_ATTRIBUTES_CHARS,
    PacketInvalid,
    build_packet,
    task_attributes,
    validate_packet,
)

EVENTS = "https://helpline.example/twilio/events"


def _turn(index: int, text: str, intent: str, confidence: float, decision: str, **extra) -> TurnRecord:
    return TurnRecord(
        index=index,
        speech_started_ms=index * 5000,
        speech_end_ms=index * 5000 + 2000,
        transcript=text,
        asr_confidence=0.9,
        intent=intent,
        nlu_confidence=confidence,
        intent_ranking=[{"name": intent, "confidence": confidence}, {"name": "out_of_scope", "confidence": 0.02}],
        decision=decision,
        reply="...",
        **extra,
    )


def routed_record(queue: str = "appeals", intent: str = "appeal_decision") -> dict:
    record = CallRecord(
        call_sid="CA" + "1" * 32, stream_sid="MZ1", caller="+46******67", started_at="2026-11-25T09:00:00.000+00:00"
    )
    record.turns = [
        _turn(1, "hello", "greet", 0.99, "smalltalk:greet"),
        _turn(2, "when is the child allowance paid", "ask_payment_dates", 0.97, "answer:payment_dates"),
        _turn(
            3,
            "the decision on my sickness benefit from the 3rd of may is wrong and i want to appeal it",
            intent,
            0.93,
            f"route:{queue}",
            entities=[
                {"entity": "benefit_type", "value": "sickness benefit"},
                {"entity": "date", "value": "3rd of may"},
            ],
        ),
    ]
    record.said = ["Hello, you are talking to an automated assistant.", "Child allowance is paid on the 20th."]
    record.answered_topics = ["payment_dates"]
    record.handoff = HandoffRequested(
        queue=queue, reason=f"intent {intent}", turn=3, fault=False, at="2026-11-25T09:01:30.000+00:00"
    )
    return record.as_dict()


VOCABULARY = RoutingTable.load()


def packet_for(record: dict, previous: int = 0) -> dict:
    # The caller's mood is judged as the call ends, from the same earlier calls, before the packet is built.
    record = {**record, "mood": call_mood(record["turns"], previous, VOCABULARY.person_intents).as_dict()}
    return build_packet(
        record,
        VOCABULARY,
        handed_off_at=record["handoff"]["at"],
        previous_calls_7d=previous,
        language="en",
        agent_url="https://helpline.example/agent/calls/" + record["call_sid"],
    )


def test_packet_carries_the_whole_call_and_validates():
    packet = packet_for(routed_record(), previous=2)
    assert packet["schema_version"] == 2 and packet["queue"] == "appeals"
    assert packet["intent"] == {"name": "appeal_decision", "confidence": 0.93}
    assert [t["turn"] for t in packet["transcript"]] == [1, 2, 3]
    assert packet["transcript"][2]["asr_confidence"] == 0.9
    assert {"entity": "benefit_type", "value": "sickness benefit", "turn": 3} in packet["entities"]
    assert packet["answered_topics"] == ["payment_dates"]
    assert packet["flags"] == {"urgent": False, "distress": False, "repeat_caller": True, "fault": False}
    assert packet["assistant_said"][0].startswith("Hello")


def test_summary_quotes_the_deciding_turn_and_details_but_not_small_talk():
    summary = packet_for(routed_record())["summary"]
    assert summary.startswith("About appealing a decision (93% sure).")
    assert "the decision on my sickness benefit" in summary
    assert '"hello"' not in summary
    assert "Details: benefit type: sickness benefit; date: 3rd of may." in summary
    assert "Already answered: payment dates." in summary


def test_summary_says_how_often_the_caller_called_before_in_plain_words():
    assert "Called twice before in the last 7 days." in packet_for(routed_record(), previous=2)["summary"]
    assert "Called once before in the last 7 days." in packet_for(routed_record(), previous=1)["summary"]
    assert "Called" not in packet_for(routed_record(), previous=0)["summary"]


def test_summary_leaves_out_a_transcript_that_was_only_read_back():
    record = routed_record()
    record["turns"][1] |= {"decision": "confirm:asr", "intent": "", "nlu_confidence": 0.0, "transcript": "won more"}
    summary = packet_for(record)["summary"]
    assert "won more" not in summary and "the decision on my sickness benefit" in summary


def test_distress_is_flagged_urgent_and_said_first():
    record = routed_record(queue="general", intent="distress")
    packet = packet_for(record)
    assert packet["flags"]["urgent"] and packet["flags"]["distress"]
    assert packet["summary"].startswith("URGENT")


def test_a_fault_without_a_request_still_makes_a_valid_packet():
    record = routed_record()
    record["handoff"] = {
        **record["handoff"],
        "queue": "general",
        "turn": None,
        "fault": True,
        "reason": "speech recognition failed",
    }
    packet = packet_for(record)
    assert packet["intent"] is None and packet["intent_ranking"] == []
    assert packet["flags"]["fault"]
    assert packet["summary"].startswith("Routed because: speech recognition failed.")


def test_schema_refuses_a_broken_packet():
    packet = packet_for(routed_record())
    for breakage in (
        lambda p: p.update(queue="sales"),  # not a DOMAIN.md queue
        lambda p: p.pop("summary"),
        lambda p: p["transcript"][0].update(asr_confidence=1.7),
        lambda p: p.update(unexpected="field"),
        lambda p: p.update(started_at="yesterday"),
    ):
        broken = copy.deepcopy(packet)
        breakage(broken)
        with pytest.raises(PacketInvalid):
            validate_packet(broken)


def test_task_attributes_keep_the_latest_turns_when_too_long():
    record = routed_record()
    long_turn = record["turns"][0] | {"transcript": "word " * 400}
    record["turns"] = [long_turn | {"index": i} for i in range(1, 20)] + [record["turns"][2] | {"index": 20}]
    record["handoff"]["turn"] = 20
    attributes = json.loads(task_attributes(packet_for(record)))
    assert len(task_attributes(packet_for(record))) <= MAX_ATTRIBUTES_CHARS
    assert attributes["transcript"][-1]["turn"] == 20
    assert attributes["transcript_truncated"] == 20 - len(attributes["transcript"])
    validate_packet(attributes)


QUEUE_FILE = Path(__file__).resolve().parents[1] / "telephony" / "queues.yml"


def test_the_shipped_queue_table_covers_every_queue():
    table = QueueTable.load(QUEUE_FILE)
    assert set(table.queues) == set(QUEUES)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t["queues"].pop("fraud"), "missing"),
        (
            lambda t: t["queues"]["appeals"].update(dial={"number": "+46771000001"}),
            "exactly one of taskrouter and dial",
        ),
        (lambda t: t.update(fallback_number="0771-52 45 24"), "fallback_number"),
        (lambda t: t["queues"]["family"]["taskrouter"].update(workflow_sid="WW123"), "workflow_sid"),
    ],
)
def test_a_broken_queue_table_is_refused_with_the_reason(tmp_path, change, message):
    import yaml

    table = yaml.safe_load(QUEUE_FILE.read_text())
    change(table)
    path = tmp_path / "queues.yml"
    path.write_text(yaml.safe_dump(table))
    with pytest.raises(ValueError, match=message):
        QueueTable.load(path)


def test_taskrouter_twiml_enqueues_the_packet_with_priority():
    table = QueueTable.load(QUEUE_FILE)
    packet = packet_for(routed_record())
    enqueue = ET.fromstring(queue_twiml(packet, table, EVENTS)).find("Enqueue")
    assert enqueue is not None
    assert enqueue.get("workflowSid") == table.queues["appeals"].taskrouter.workflow_sid
    assert "source=enqueue" in enqueue.get("action", "")
    task = enqueue.find("Task")
    assert json.loads(task.text) == packet
    assert task.get("priority") == "10"
    urgent = packet_for(routed_record(queue="general", intent="distress"))
    task = ET.fromstring(queue_twiml(urgent, table, EVENTS)).find("Enqueue/Task")
    assert task.get("priority") == str(table.urgent_priority)


def test_dial_queue_and_fallback_twiml():
    table = QueueTable.load(QUEUE_FILE)
    packet = packet_for(routed_record(queue="fraud", intent="report_fraud"))
    dial = ET.fromstring(queue_twiml(packet, table, EVENTS)).find("Dial")
    assert dial.find("Sip").text.startswith("sip:fraud-desk@pbx.agency.example?X-Helpline-Call=CA")
    assert "source=dial" in dial.get("action") and "queue=fraud" in dial.get("action")
    fallback = ET.fromstring(fallback_twiml(table, "CA1", EVENTS)).find("Dial")
    assert fallback.find("Number").text == table.fallback_number
    assert "fallback=1" in fallback.get("action")
