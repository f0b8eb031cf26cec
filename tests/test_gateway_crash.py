"""A gateway killed mid-call loses nothing it had decided: the turns are in the call store already, and the gateway,
restarted, marks the call it held as interrupted."""

import asyncio
import os
import signal

import pytest
from sqlalchemy import select

from analytics.models import Call
from analytics.store import CallStore
from telephony.softphone import Silence, Softphone, SoftphoneError
from tests.conftest import free_port, gateway_process, spoken

pytestmark = [pytest.mark.rasa, pytest.mark.models]


async def test_gateway_killed_mid_call_keeps_the_turns_and_marks_the_call_when_it_restarts(stack, caller_voice):
    settings = stack.model_copy(update={"gateway": stack.gateway.model_copy(update={"port": free_port()})})
    store = CallStore.open(settings.database)
    caller = [spoken(caller_voice, "When is the child allowance paid?"), Silence(prompts=3)]
    with gateway_process(settings, "crash") as gateway:
        call = asyncio.create_task(Softphone(settings, speed=2.0).call(caller))
        turns = []
        for _ in range(600):  # the answer is decided (and stored) while the caller still listens
            turns = await asyncio.to_thread(_turns_of_calls_in_progress, store, settings.gateway.port)
            if turns:
                break
            await asyncio.sleep(0.1)
        assert turns, "no turn reached the store while the call was in progress"
        os.killpg(gateway.process.pid, signal.SIGKILL)  # no clean shutdown: the call never ends properly
        with pytest.raises(SoftphoneError):
            await call
    [turn] = turns
    # What the NLU made of it (an answer, or a question back when two topics are close) is not this test's business;
    # that the decided turn was in the store before the gateway died is.
    assert turn.decision and turn.intent and "child" in turn.transcript.lower()
    sid = turn.call_sid
    assert store.call(sid).status == "in_progress"
    with gateway_process(settings, "crash-restarted"):
        call_row = store.call(sid)
        assert (call_row.status, call_row.outcome) == ("interrupted", "failed")
        assert [t.index for t in store.turns(sid)] == [1]
    store.close()


def _turns_of_calls_in_progress(store: CallStore, port: int) -> list:
    with store.sessions() as db:
        calls = db.scalars(select(Call.call_sid).where(Call.status == "in_progress", Call.worker.endswith(f":{port}")))
        return [turn for sid in list(calls) for turn in store.turns(sid)]
