"""The real Rasa server and action server: decisions for caller phrasings written apart from the training data."""

import pytest

from nlu.client import RasaClient

pytestmark = pytest.mark.rasa


@pytest.fixture
async def rasa(stack):
    client = RasaClient(stack.rasa.url, stack.rasa.timeout_s)
    yield client
    await client.aclose()


@pytest.mark.parametrize(
    "text, decision",
    [
        ("what time do your phone lines open on monday", "answer:opening_hours"),
        ("i would like to know the date my parental benefit gets paid", "answer:payment_dates"),
        ("i'd like to appeal against the decision you sent me", "route:appeals"),
        ("can i please talk to a real human being", "route:general"),
        ("somebody is using my identity to claim benefits", "route:fraud"),
        ("my sickness benefit was suddenly stopped last month", "route:sickness"),
        ("is this an automated voice or a person", "smalltalk:bot_challenge"),
    ],
)
async def test_decisions_for_held_out_phrasings(rasa, text, decision):
    turn = await rasa.respond(text, f"test-{abs(hash(text))}", {"channel": "test"})
    assert turn.decision == decision, turn.as_dict()
    assert turn.reply
    assert turn.intent_ranking and turn.intent_ranking[0][0] == turn.intent


async def test_answer_then_repeat_then_no_ends_the_call(rasa):
    sender = "test-conversation-1"
    first = await rasa.respond("when do you pay out child allowance", sender, {})
    assert first.decision == "answer:payment_dates"
    assert "twentieth" in first.reply and "anything else" in first.reply.lower()
    again = await rasa.respond("sorry could you say that again", sender, {})
    assert again.decision == "smalltalk:repeat"
    assert again.reply == first.reply
    last = await rasa.respond("no thank you that's everything", sender, {})
    assert last.decision == "smalltalk:goodbye"


async def test_two_failed_understandings_route_to_general(rasa):
    sender = "test-conversation-2"
    first = await rasa.respond("zxq plorb wibble", sender, {})
    assert first.decision == "smalltalk:out_of_scope"
    second = await rasa.respond("flarn greeble zop", sender, {})
    assert second.decision == "route:general"
    assert second.details["reason"].startswith("not understood")


async def test_call_greeting_says_it_is_an_automated_assistant(rasa):
    texts = await rasa.start_call("test-greeting")
    assert any("automated assistant" in t for t in texts)


async def test_distress_is_routed_at_once_and_flagged_urgent(rasa):
    turn = await rasa.respond("please help me i really can't go on anymore", "test-distress", {})
    assert turn.decision == "route:general"
    assert turn.details["urgent"] is True


async def test_personal_identity_number_is_extracted_but_never_stored(rasa, stack):
    import httpx

    sender = "test-personnummer"
    turn = await rasa.respond("i want to appeal my decision my personal number is 811218-9876", sender, {})
    assert turn.decision == "route:appeals"
    assert {"entity": "personal_id", "value": "personnummer"} in [
        {"entity": e["entity"], "value": e["value"]} for e in turn.entities
    ]
    async with httpx.AsyncClient() as http:
        tracker = (await http.get(f"{stack.rasa.url}/conversations/{sender}/tracker")).json()
    texts = [e.get("text") or "" for e in tracker["events"] if e["event"] == "user"]
    assert texts and all("9876" not in t for t in texts)
    assert any("[personnummer]" in t for t in texts)


async def test_model_hot_reload_keeps_conversations_in_progress(rasa, stack):
    """The running server loads a model again mid-conversation; the conversation's state survives."""
    from helpline.trainer import reload_model
    from helpline.training import model_path

    sender = "test-hot-reload"
    first = await rasa.respond("zxq plorb wibble", sender, {})
    assert first.decision == "smalltalk:out_of_scope"
    reload_model(stack, model_path(stack))
    second = await rasa.respond("flarn greeble zop", sender, {})
    # Only a conversation that remembers the first failure routes on the second.
    assert second.decision == "route:general"
