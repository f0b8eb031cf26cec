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
    assert str(turn.decision) == decision, turn.as_dict()
    assert turn.reply
    assert turn.intent_ranking and turn.intent_ranking[0][0] == turn.intent


async def test_answer_then_repeat_then_no_ends_the_call(rasa):
    sender = "test-conversation-1"
    first = await rasa.respond("when do you pay out child allowance", sender, {})
    assert str(first.decision) == "answer:payment_dates"
    assert "twentieth" in first.reply and "anything else" in first.reply.lower()
    again = await rasa.respond("sorry could you say that again", sender, {})
    assert str(again.decision) == "smalltalk:repeat"
    assert again.reply == first.reply
    last = await rasa.respond("no thank you that's everything", sender, {})
    assert str(last.decision) == "smalltalk:goodbye"


async def test_two_failed_understandings_route_to_general(rasa):
    sender = "test-conversation-2"
    first = await rasa.respond("zxq plorb wibble", sender, {})
    assert str(first.decision) == "clarify:rephrase"  # asked to say it again
    second = await rasa.respond("flarn greeble zop", sender, {})
    assert str(second.decision) == "route:general"
    assert second.details["reason"].startswith("not understood")


async def test_call_greeting_says_it_is_an_automated_assistant(rasa):
    texts = await rasa.start_call("test-greeting")
    assert any("automated assistant" in t for t in texts)


async def test_a_call_opened_in_swedish_is_answered_in_swedish_by_the_same_servers(rasa):
    from foundation.language import load_language

    sv = load_language("sv").dialogue
    texts = await rasa.start_call("test-swedish", language="sv")
    assert any("automatisk assistent" in t for t in texts), texts
    # The NLU data is English: an English question, answered in the call's language.
    answer = await rasa.respond("what time do your phone lines open on monday", "test-swedish", {})
    assert str(answer.decision) == "answer:opening_hours"
    assert sv.answers["opening_hours"] in answer.reply and "Finns det något mer" in answer.reply, answer.reply
    routed = await rasa.respond("i'd like to appeal against the decision you sent me", "test-swedish", {})
    assert str(routed.decision) == "route:appeals"
    assert routed.reply == sv.say.route.format(queue=sv.queues["appeals"]), routed.reply
    # The English conversations on the same servers stay English.
    english = await rasa.start_call("test-english")
    assert any("automated assistant" in t for t in english), english


async def test_distress_is_routed_at_once_and_flagged_urgent(rasa):
    turn = await rasa.respond("please help me i really can't go on anymore", "test-distress", {})
    assert str(turn.decision) == "route:general"
    assert turn.details["urgent"] is True


async def test_an_identity_number_does_not_reach_the_dialogue_and_is_an_entity(rasa, stack):
    """Callers often start with their number: it is not what they want, and the NLU never reads it."""
    import httpx

    sender = "test-identity-first"
    turn = await rasa.respond("My personal number is 850314-1239. I want to appeal my decision.", sender, {})
    assert str(turn.decision) == "route:appeals"
    assert {"entity": "personal_id", "value": "personnummer"} in [
        {"entity": e["entity"], "value": e["value"]} for e in turn.entities
    ]
    async with httpx.AsyncClient() as http:
        tracker = (await http.get(f"{stack.rasa.url}/conversations/{sender}/tracker")).json()
    texts = [e.get("text") or "" for e in tracker["events"] if e["event"] == "user"]
    assert texts == ["I want to appeal my decision."]


async def test_personal_identity_number_sent_to_rasa_itself_is_extracted_but_never_stored(stack):
    """Rasa's own extractor and tracker store, for a number that reaches it another way than the line's client."""
    import httpx

    sender = "test-personnummer"
    message = {"sender": sender, "message": "i want to appeal my decision my personal number is 811218-9876"}
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(f"{stack.rasa.url}/webhooks/rest/webhook", json=message)
        tracker = (await http.get(f"{stack.rasa.url}/conversations/{sender}/tracker")).json()
    entities = tracker["latest_message"]["entities"]
    assert {"entity": "personal_id", "value": "personnummer"} in [
        {"entity": e["entity"], "value": e["value"]} for e in entities
    ]
    texts = [e.get("text") or "" for e in tracker["events"] if e["event"] == "user"]
    assert texts and all("9876" not in t for t in texts)
    assert any("[personnummer]" in t for t in texts)


async def test_model_hot_reload_keeps_conversations_in_progress(rasa, stack):
    """The running server loads a model again mid-conversation; the conversation's state survives."""
    from helpline.trainer import reload_model
    from helpline.training import model_path

    sender = "test-hot-reload"
    first = await rasa.respond("zxq plorb wibble", sender, {})
    assert str(first.decision) == "clarify:rephrase"  # asked to say it again
    reload_model(stack, model_path(stack))
    second = await rasa.respond("flarn greeble zop", sender, {})
    # Only a conversation that remembers the first failure routes on the second.
    assert str(second.decision) == "route:general"


def _run_action(stack, action: str, intent: str, ranking: list[tuple[str, float]], slots: dict) -> dict:
    """Call the real action server the way Rasa does, with a tracker whose NLU result we choose."""
    import httpx

    tracker = {
        "sender_id": "test-action-server",
        "slots": {"failed_understandings": 0, "clarify_intent": None, "clarify_alternative": None} | slots,
        "latest_message": {
            "text": "...",
            "intent": {"name": intent, "confidence": ranking[0][1]},
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
            "entities": [],
        },
        "events": [],
        "paused": False,
        "followup_action": None,
        "active_loop": {},
        "latest_action_name": "action_listen",
    }
    body = {
        "next_action": action,
        "sender_id": "test-action-server",
        "tracker": tracker,
        "domain": {},
        "version": "3.6.2",
    }
    response = httpx.post(f"{stack.rasa.actions_url}/webhook", json=body, timeout=10)
    response.raise_for_status()
    return response.json()


def test_close_intents_make_the_assistant_ask_instead_of_guessing(stack):
    ranking = [("nlu_fallback", 0.45), ("ask_processing_times", 0.38), ("appeal_decision", 0.33), ("greet", 0.1)]
    result = _run_action(stack, "action_handle_fallback", "nlu_fallback", ranking, {})
    [message] = [r for r in result["responses"] if r.get("text")]
    assert message["custom"]["decision"] == "clarify:ask_processing_times"
    assert "how long a decision takes" in message["text"]
    slots = {e["name"]: e["value"] for e in result["events"] if e["event"] == "slot"}
    assert slots == {"clarify_intent": "ask_processing_times", "clarify_alternative": "appeal_decision"}


def test_no_to_the_first_guess_asks_about_the_second_and_yes_acts_on_it(stack):
    pending = {"clarify_intent": "ask_processing_times", "clarify_alternative": "appeal_decision"}
    after_no = _run_action(stack, "action_resolve_clarification", "deny", [("deny", 0.98)], pending)
    [question] = [r for r in after_no["responses"] if r.get("text")]
    assert question["custom"]["decision"] == "clarify:appeal_decision"
    after_yes = _run_action(
        stack, "action_resolve_clarification", "affirm", [("affirm", 0.97)], {"clarify_intent": "appeal_decision"}
    )
    [routing] = [r for r in after_yes["responses"] if r.get("text")]
    assert routing["custom"]["decision"] == "route:appeals"


def test_a_weak_guess_without_a_close_rival_counts_as_not_understood(stack):
    ranking = [("nlu_fallback", 0.45), ("ask_login_help", 0.41), ("greet", 0.05)]
    result = _run_action(stack, "action_handle_fallback", "nlu_fallback", ranking, {})
    [message] = [r for r in result["responses"] if r.get("text")]
    # Asked to say it again, not told "I can't help with that".
    assert message["custom"]["decision"] == "clarify:rephrase"
    assert "can't help" not in message["text"]
