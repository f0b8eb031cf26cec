"""CI's understanding gates on the FROZEN held-out set, through the real line: typed turns through the real Rasa
dialogue, and a fixed spoken sample placed as real calls through the gateway by caller voices other than the
assistant's own, on clean and degraded phone lines. Plus the policy: no benefit problem is ever dismissed."""

import asyncio
import json
import uuid

import pytest

from foundation.routing_table import RoutingTable
from helpline.understanding import Scores, judge_spoken, judge_typed, rotating_plan
from nlu.caller_turns import HELDOUT_TURNS, load_turns, sample
from nlu.client import RasaClient
from tests.conftest import extra_gateway
from tests.test_understanding_units import BENEFIT_PROBLEMS
from voice.caller_voices import CALLER_VOICES

pytestmark = [pytest.mark.rasa, pytest.mark.models]

# Floors CI holds the line to, under what was measured (2026-12-01 when the set was frozen: typed right 0.831, 7
# dismissed; spoken sample right 0.673, wrong action 7.7 %. 2026-12-02, after invented tails were dropped, the
# read-back rule chosen on the dev set and "please say it again" told apart from a dismissal: typed right 0.876,
# none dismissed; spoken sample right 0.731, wrong action 1.9 %, none dismissed. 2026-12-04, DIET blended with the
# encoder probe: typed right 0.921, none dismissed; spoken sample right 0.788, wrong action 0.0 %, none dismissed;
# README "Understanding callers"). Issue #14's targets are higher (typed 0.97; spoken right 0.93, wrong action 2 %)
# and are not all met: these gates stop a regression, with a margin of a few turns for the spoken sample's timing.
TYPED_RIGHT_FLOOR = 0.90
# No benefit problem may be dismissed: the target, met on the typed set.
TYPED_DISMISSED_CEILING = 0
# This sample has given 37 to 41 right of 52: 0.731 (2026-12-02), 0.788 (2026-12-04), and 0.712 in a fresh-clone CI
# run on 2026-12-06 (Intel Xeon) whose code heard and decided as in the run before it, which passed: recognition
# differs from run to run and with what CI runs beside it. The floor was 0.73, the lowest figure then seen, so CI
# failed on that noise; it is now one call under the lowest seen (36 of 52).
SPOKEN_RIGHT_FLOOR = 0.69
SPOKEN_WRONG_ACTION_CEILING = 0.04
SPOKEN_DISMISSED_CEILING = 0


def test_no_benefit_problem_is_dismissed(stack):
    """Benefit problems written for the tests, in words no intent was trained on: whatever the NLU makes of them,
    the assistant must not turn them away."""

    async def decisions() -> list[tuple[str, str]]:
        rasa = RasaClient(stack.rasa.url, stack.rasa.timeout_s)
        out = []
        try:
            for text in BENEFIT_PROBLEMS:
                sender = f"policy-{uuid.uuid4().hex}"
                await rasa.start_call(sender)
                out.append((text, str((await rasa.respond(text, sender, {"input": "typed"})).decision)))
        finally:
            await rasa.aclose()
        return out

    made = asyncio.run(decisions())
    print(json.dumps(made, indent=1))
    dismissed = [(text, decision) for text, decision in made if decision == "smalltalk:out_of_scope"]
    assert not dismissed
    # Asked which matter it is, or put through to a person, or understood: each a way of helping.
    assert all(d.split(":", 1)[0] in ("clarify", "route", "answer") for _, d in made), made


def test_typed_heldout_turns_through_the_real_dialogue(stack):
    routing = RoutingTable.load()
    judged = asyncio.run(judge_typed(stack, load_turns(HELDOUT_TURNS)))
    scores = Scores.of(judged, routing)
    print(scores)
    assert scores.n >= 300
    assert scores.dismissed_benefit_problems <= TYPED_DISMISSED_CEILING
    assert scores.right >= TYPED_RIGHT_FLOOR


def test_spoken_heldout_sample_through_the_gateway(stack):
    """Through a gateway with the production turn-taking (the session's gateway has read-back off)."""
    from foundation.settings import TurnTakingSettings

    routing = RoutingTable.load()
    plan = rotating_plan(sample(load_turns(HELDOUT_TURNS), 2), list(CALLER_VOICES.values()))
    with extra_gateway(stack, "(production turn-taking)", turn_taking=TurnTakingSettings().model_dump()) as gateway:
        # Real time, 12 calls at once: the calls mostly wait on the clock, and a caller's patience stays a caller's
        # (played 3x faster, a machine busy with other tests made callers hang up before their reply came).
        judged = asyncio.run(judge_spoken(gateway, plan, at_once=12, speed=1.0))
    scores = Scores.of(judged, routing)
    print(scores)
    for j in judged:
        if j.verdict != "right":
            print(f"{j.verdict:12} {j.voice:10} {j.condition:9} {j.turn.text!r} heard {j.transcript!r} -> {j.decision}")
    assert len({j.voice for j in judged}) == len(CALLER_VOICES) and {j.condition for j in judged} == {
        "clean",
        "degraded",
    }
    assert not [j for j in judged if j.decision.startswith("dropped")], "every call was placed"
    assert scores.dismissed_benefit_problems <= SPOKEN_DISMISSED_CEILING
    assert scores.right >= SPOKEN_RIGHT_FLOOR
    assert scores.wrong_action <= SPOKEN_WRONG_ACTION_CEILING
