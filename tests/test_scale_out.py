"""Scale-out on one machine, for real: two gateways and two Rasa servers sharing a PostgreSQL tracker store and a
Redis lock store (Rasa's own), one PostgreSQL call store, one action server. Calls are spread over the gateways;
a routed call is stored whole in PostgreSQL; one gateway is killed mid-load and no call record is lost; a Rasa server
killed mid-call is taken over by the other, which continues the same conversation from the shared tracker store.

The production configuration shares this module's line: its processes start once for all of it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import create_engine, select, text

from analytics import kpis
from analytics.models import Call, Turn
from analytics.retention import purge, tracker_databases
from analytics.store import CallStore, utcnow
from foundation.settings import Settings
from helpline.loadgen import caller_audio, place_calls
from helpline.services import Cluster, wait_voice_warm
from telephony.softphone import Softphone
from tests.conftest import free_port, fresh_postgres_database, metric, signed_post, spoken

# Its own lines, beside the session's shared one: ./test.sh's second worker runs this module (and the fault line's).
pytestmark = [pytest.mark.rasa, pytest.mark.models, pytest.mark.xdist_group("own-lines")]

REDIS = ("127.0.0.1", 6379)


def _redis_answers() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _ensure_redis() -> None:
    """The machine's Redis; started (as the machine notes say) if it has stopped."""
    if _redis_answers():
        return
    subprocess.run(
        ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
         "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"],
        check=False, capture_output=True,
    )  # fmt: skip
    for _ in range(30):
        if _redis_answers():
            return
        time.sleep(1)
    pytest.fail("Redis does not answer at 127.0.0.1:6379 and could not be started")


@pytest.fixture(scope="module")
def cluster(test_settings: Settings) -> Iterator[Cluster]:
    _ensure_redis()
    with fresh_postgres_database() as calls_url, fresh_postgres_database() as trackers_url:
        settings = test_settings.model_copy(
            update={
                "database_url": calls_url,
                "rasa": test_settings.rasa.model_copy(
                    update={
                        "actions_port": free_port(),
                        "tracker_store_url": trackers_url.replace("+psycopg", ""),
                        "lock_store_url": f"redis://{REDIS[0]}:{REDIS[1]}/3",
                    }
                ),
            }
        )
        with Cluster(settings, [free_port(), free_port()], [free_port(), free_port()], ensure_model=False) as c:
            c.wait_voice_warm(180)
            yield c


async def test_a_routed_call_is_stored_in_postgresql(cluster, caller_voice, twilio_standin):
    """The production configuration through a whole call: a gateway whose call store is the real PostgreSQL server
    (first in this module: nothing has been killed yet)."""
    gateway = cluster.gateways[0]
    said = "I was refused sickness benefit and I need help with it."
    # If the NLU is not sure and asks "is your call about ...?", the caller says yes (seen once in CI: 0.45 sure).
    # Routed at once, the call ends before the yes is said.
    answer = spoken(caller_voice, "Yes, that's right.")
    result = (await Softphone(gateway, speed=2.0).call([spoken(caller_voice, said), answer])).as_dict()
    assert result["outcome"] == "routed:sickness" and result["delivery"] == "queue"
    store = await asyncio.to_thread(CallStore.open, cluster.settings.database, False)
    call = await asyncio.to_thread(store.call, result["call_sid"])
    turns = await asyncio.to_thread(store.turns, result["call_sid"])
    events = await asyncio.to_thread(store.task_events, result["call_sid"])
    store.close()
    assert (call.status, call.outcome, call.queue) == ("ended", "routed:sickness", "sickness")
    assert call.packet["queue"] == "sickness" and call.packet["transcript"][0]["text"] == turns[0].transcript
    assert turns[-1].decision == "route:sickness" and turns[0].intent in ("sickness_problem", "nlu_fallback")
    assert [e.kind for e in events] == ["redirect_queue"]
    assert twilio_standin.wait_for_twiml(result["call_sid"]).fetch_status == 200


async def test_calls_spread_over_two_gateways_and_one_killed_mid_load_loses_no_record(cluster):
    a, b = cluster.gateways
    store = CallStore.open(cluster.settings.database)
    load = asyncio.create_task(place_calls([a, b], caller_audio(), n=10, at_once=4))
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(600):  # until gateway b holds calls, well into the load
            if (await http.get(f"{b.gateway_url}/healthz")).json()["calls_in_progress"] >= 2:
                break
            await asyncio.sleep(0.1)
    killed = cluster.process("gateway 2")
    os.killpg(killed.process.pid, signal.SIGKILL)
    results = await load

    by_gateway = {a.gateway.port: [], b.gateway.port: []}
    for r in results:
        by_gateway[r["gateway"]].append(r)
    assert all(r["outcome"] != "dropped" for r in by_gateway[a.gateway.port]), "the surviving gateway drops nothing"
    dropped = [r for r in results if r["outcome"] == "dropped"]
    assert dropped, "the killed gateway held calls"

    # Twilio follows each broken stream's <Redirect> to the handoff URL; the load balancer sends it to gateway a,
    # which puts the caller through to a person and settles the record the dead gateway left.
    for r in dropped:
        form = {"CallSid": r["call_sid"], "From": "+46701234567", "CallStatus": "in-progress"}
        answer = signed_post(a, f"/twilio/handoff/{r['call_sid']}", form)
        assert answer.status_code == 200 and ("<Dial" in answer.text or "<Enqueue" in answer.text), answer.text

    def settled() -> bool:
        rows = [store.call(r["call_sid"]) for r in results]
        return all(row is not None and row.status != "in_progress" for row in rows)

    for _ in range(100):
        if await asyncio.to_thread(settled):
            break
        await asyncio.sleep(0.2)
    for r in results:  # every call has its record: ended where it ended, interrupted where its gateway died
        row = store.call(r["call_sid"])
        assert row is not None, r
        if r["outcome"] == "dropped":
            assert row.status == "interrupted" and row.outcome.startswith("routed:"), (row.status, row.outcome)
            # Held by b; or, where b died before any write of the call reached the store, recorded by a.
            assert row.worker.endswith(f":{b.gateway.port}") or (row.worker == "" and row.caller == "+46*******67")
        else:
            assert row.status == "ended" and row.outcome == r["outcome"]
            assert len(store.turns(r["call_sid"])) == len([t for t in r["turns"] if t["transcript"]])
    workers = {row.worker.rsplit(":", 1)[1] for row in (store.call(r["call_sid"]) for r in results) if row.worker}
    assert workers == {str(a.gateway.port), str(b.gateway.port)}, "calls were spread over both gateways"
    # What b had taken but not stored when it died waits in its journal; restarted, b replays it.
    journal = next((cluster.settings.data_dir / "journal").glob(f"store-*_{b.gateway.port}.jsonl"))
    entries = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    unstored = {e["fields"]["call_sid"] for e in entries if e["op"] == "call_started"}
    killed.start()
    wait_voice_warm(b, 180, killed)
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(100):
            if (await http.get(f"{b.gateway_url}/healthz")).json()["store_writes_waiting"] == 0:
                break
            await asyncio.sleep(0.2)
    rows = {r["call_sid"]: store.call(r["call_sid"]) for r in results}
    assert not any(row.status == "in_progress" for row in rows.values())
    for sid in unstored:  # a call a recorded from Twilio's word alone now has its start and gateway too
        assert rows[sid].worker.endswith(f":{b.gateway.port}"), (sid, rows[sid].worker)
    assert all(row.worker for row in rows.values() if row.status == "ended")
    store.close()


async def test_a_rasa_server_killed_mid_call_is_taken_over_by_the_other(cluster, caller_voice):
    a = cluster.gateways[0]  # talks to Rasa server 1 first
    sid = "CA" + os.urandom(16).hex()
    caller = [spoken(caller_voice, "What are your opening hours?"), spoken(caller_voice, "Thank you, goodbye.")]
    call = asyncio.create_task(Softphone(a, speed=2.0).call(caller, call_sid=sid))
    async with httpx.AsyncClient(timeout=5) as http:
        for _ in range(600):
            record = (await http.get(f"{a.gateway_url}/api/calls/{sid}")).json()
            if any(t.get("decision") for t in record.get("turns", [])):
                break
            await asyncio.sleep(0.1)
    rasa_1 = cluster.process("rasa server 1")
    os.killpg(rasa_1.process.pid, signal.SIGKILL)
    result = (await call).as_dict()
    assert [t["decision"] for t in result["turns"] if t["transcript"]] == ["answer:opening_hours", "smalltalk:goodbye"]
    assert result["outcome"] == "answered:opening_hours" and not result["handoff"]
    # Rasa server 2 continued the conversation server 1 began: the shared tracker holds both turns.
    async with httpx.AsyncClient(timeout=10) as http:
        tracker = (await http.get(f"{cluster.rasa_settings[1].rasa.url}/conversations/{sid}/tracker")).json()
    intents = [e["parse_data"]["intent"]["name"] for e in tracker["events"] if e["event"] == "user"]
    assert intents[-2:] == ["ask_opening_hours", "goodbye"], intents
    # ... and the monitoring saw gateway a move to the other server.
    assert metric(a, "helpline_rasa_failovers_total") >= 1


async def test_retention_purges_both_production_stores_and_the_figures_stay(cluster, caller_voice):
    """With the clock 91 days on, every call of this cluster is past its time: this test's own call and any an earlier
    test placed on it (xdist may give the module a fresh cluster midway). The call store and the tracker store are
    the real PostgreSQL databases, the conversation as the real Rasa servers wrote it."""
    said = [spoken(caller_voice, "What are your opening hours?"), spoken(caller_voice, "I want to talk to a person.")]
    result = (await Softphone(cluster.gateways[0], speed=2.0).call(said)).as_dict()
    assert result["outcome"] == "routed:general", result["outcome"]
    store = await asyncio.to_thread(CallStore.open, cluster.settings.database, False)
    for _ in range(300):  # the gateway writes the ended call just after the caller's side has closed
        call = await asyncio.to_thread(store.call, result["call_sid"])
        if call is not None and call.status == "ended":
            break
        await asyncio.sleep(0.1)
    trackers = tracker_databases(cluster.settings)
    period = kpis.period_of(None, None, zone=cluster.settings.zone)

    def figures() -> dict:
        with store.sessions() as db:
            return kpis.summary(db, period, 300.0)

    before = await asyncio.to_thread(figures)
    assert before["outcomes"]["calls"] >= 1 and before["outcomes"]["routed"] >= 1
    later = utcnow() + timedelta(days=91)
    report = await asyncio.to_thread(purge, store, trackers, cluster.settings.retention, later)
    assert report.error == "" and report.calls >= 1 and report.conversations >= 1, report
    assert await asyncio.to_thread(figures) == before  # every KPI of the period is still computable, and the same
    with store.sessions() as db:
        calls = db.scalars(select(Call).where(Call.status != "in_progress")).all()
        transcripts = db.scalars(select(Turn.transcript).where(Turn.transcript != "")).all()
    assert calls and all(c.purged_at and c.record is None and c.packet is None for c in calls)
    assert transcripts == []
    engine = create_engine(trackers[0])
    with engine.connect() as db:
        assert db.execute(text("SELECT COUNT(*) FROM events")).scalar() == 0
    engine.dispose()
    store.close()
