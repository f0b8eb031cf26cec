"""The gateway's Prometheus metrics: what a call adds to them, read as Prometheus reads them, during and after it."""

import asyncio
import json
import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from foundation.settings import REPO_ROOT
from telephony.call_record import CallRecord, TurnRecord
from telephony.metrics import LineMetrics, LineReadings
from telephony.softphone import Softphone
from tests.conftest import metric, spoken


def _metrics(
    in_progress: int = 0, backlog: int = 0, outage: bool = False, failovers: int = 0, waiting: int = 0, hurried: int = 0
) -> LineMetrics:
    return LineMetrics(
        LineReadings(
            lambda: in_progress, lambda: backlog, lambda: outage, lambda: failovers, lambda: waiting, lambda: hurried
        )
    )


def test_a_call_record_becomes_outcome_turn_fault_and_time_series_with_nothing_personal():
    metrics = _metrics(in_progress=2, backlog=5, outage=True, failovers=1, waiting=3, hurried=7)
    turn = TurnRecord(1, 0, 2000, transcript="my number is 19850101-1234", decision="answer:payment_dates")
    turn.asr_ms, turn.nlu_ms, turn.tts_ms, turn.endpointing_ms, turn.response_ms = 310.0, 40.0, 120.0, 700, 520.0
    failed = TurnRecord(2, 3000, 4000, transcript="and my address", error="asr: broken")
    record = CallRecord("CA1", "MZ1", "+4670***", "2026-12-03T10:00:00+00:00", turns=[turn, failed])
    record.events.append({"at_ms": 2900, "kind": "holding", "waited_ms": 2000})  # turn 1's reply was slow to come
    record.events.append({"at_ms": 4100, "kind": "fault", "part": "asr"})
    record.events.append({"at_ms": 1500, "kind": "reply_taken_back", "turn": 1, "decision": "answer:payment_dates"})
    record.outcome = "failed"
    metrics.turn_decided(turn)
    metrics.turn_decided(failed)  # no decision: a fault came first
    metrics.call_ended(record)
    text = metrics.exposition().decode()

    assert 'helpline_calls_ended_total{outcome="failed",target=""} 1.0' in text
    assert 'helpline_turns_total{kind="answer"} 1.0' in text
    assert 'helpline_faults_total{part="asr"} 1.0' in text
    assert "helpline_holding_phrases_total 1.0" in text
    assert "helpline_replies_taken_back_total 1.0" in text
    # The felt gap counts the endpointing wait as well as the server's reply time: 0.7 s + 0.52 s.
    assert "helpline_felt_gap_seconds_sum 1.22" in text
    assert 'helpline_felt_gap_seconds_bucket{le="1.2"} 0.0' in text
    assert 'helpline_felt_gap_seconds_bucket{le="1.5"} 1.0' in text
    assert 'helpline_part_seconds_count{part="asr"} 1.0' in text
    assert "helpline_calls_in_progress 2.0" in text
    assert "helpline_store_journal_backlog 5.0" in text
    assert "helpline_store_outage 1.0" in text
    assert "helpline_rasa_failovers_total 1.0" in text
    assert "helpline_recognitions_waiting 3.0" in text
    assert "helpline_recognitions_hurried_total 7.0" in text
    for personal in ("19850101", "address", "+4670"):
        assert personal not in text


def test_the_grafana_dashboard_reads_only_series_a_gateway_exports():
    dashboard = json.loads((REPO_ROOT / "deploy" / "grafana" / "helpline.json").read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"helpline_[a-z_]+", expr)}
    metrics = _metrics()
    turn = TurnRecord(1, 0, 900, decision="route:housing", asr_ms=1.0, nlu_ms=1.0, tts_ms=1.0, response_ms=1.0)
    record = CallRecord("CA2", "MZ2", "", "2026-12-03T10:00:00+00:00", turns=[turn], outcome="routed:housing")
    record.events.append({"kind": "fault", "part": "tts"})
    metrics.turn_decided(turn)
    metrics.call_ended(record)
    exported = {s.name for f in text_string_to_metric_families(metrics.exposition().decode()) for s in f.samples}
    assert len(used) >= 9 and used <= exported, used - exported


@pytest.mark.rasa
@pytest.mark.models
async def test_a_call_is_seen_in_progress_then_counted_by_outcome_and_decision(stack, caller_voice):
    answered = {"outcome": "answered", "target": "payment_dates"}
    ended_before = await asyncio.to_thread(metric, stack, "helpline_calls_ended_total", **answered)
    answers_before = await asyncio.to_thread(metric, stack, "helpline_turns_total", kind="answer")
    gaps_before = await asyncio.to_thread(metric, stack, "helpline_felt_gap_seconds_count")
    caller = [spoken(caller_voice, "When is the child allowance paid out?"), spoken(caller_voice, "No, that was all.")]
    call = asyncio.create_task(Softphone(stack, speed=2.0).call(caller))
    in_progress = 0.0
    while not call.done() and in_progress < 1:
        in_progress = await asyncio.to_thread(metric, stack, "helpline_calls_in_progress")
        await asyncio.sleep(0.05)
    result = (await call).as_dict()
    assert in_progress == 1, "the scrape during the call saw it in progress"
    assert result["outcome"] == "answered:payment_dates"

    deadline = time.monotonic() + 30  # the gateway settles the call just after the caller's side has closed
    while await asyncio.to_thread(metric, stack, "helpline_calls_ended_total", **answered) == ended_before:
        assert time.monotonic() < deadline, "the ended call was never counted"
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(metric, stack, "helpline_calls_in_progress") == 0
    assert await asyncio.to_thread(metric, stack, "helpline_turns_total", kind="answer") == answers_before + 1
    assert await asyncio.to_thread(metric, stack, "helpline_felt_gap_seconds_count") >= gaps_before + 1
    assert await asyncio.to_thread(metric, stack, "helpline_part_seconds_count", part="asr") >= 2
