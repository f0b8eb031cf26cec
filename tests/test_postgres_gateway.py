"""The production configuration: a gateway whose call store is the real PostgreSQL server, through a whole call."""

import asyncio

import pytest

from analytics.store import CallStore
from telephony.softphone import Softphone
from tests.conftest import free_port, gateway_process, spoken

pytestmark = [pytest.mark.rasa, pytest.mark.models]


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
async def test_a_routed_call_is_stored_in_postgresql(stack, caller_voice, store_url, twilio_standin):
    postgres_url = store_url
    settings = stack.model_copy(
        update={"database_url": postgres_url, "gateway": stack.gateway.model_copy(update={"port": free_port()})}
    )
    said = "I was refused sickness benefit and I need help with it."
    with gateway_process(settings, "postgres"):
        result = (await Softphone(settings, speed=2.0).call([spoken(caller_voice, said)])).as_dict()
    assert result["outcome"] == "routed:sickness" and result["delivery"] == "queue"
    store = await asyncio.to_thread(CallStore.open, postgres_url, False)
    call = await asyncio.to_thread(store.call, result["call_sid"])
    turns = await asyncio.to_thread(store.turns, result["call_sid"])
    events = await asyncio.to_thread(store.task_events, result["call_sid"])
    store.close()
    assert (call.status, call.outcome, call.queue) == ("ended", "routed:sickness", "sickness")
    assert call.packet["queue"] == "sickness" and call.packet["transcript"][0]["text"] == turns[0].transcript
    assert turns[0].decision == "route:sickness" and turns[0].intent == "sickness_problem"
    assert [e.kind for e in events] == ["redirect_queue"]
    assert twilio_standin.wait_for_twiml(result["call_sid"]).fetch_status == 200
