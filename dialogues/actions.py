"""Custom actions, run by the Rasa action server (`rasa run actions --actions dialogues.actions`, Python 3.10).

Each answer or routing step sends its text and a custom payload with the decision (answer:<topic>,
route:<queue>, smalltalk:<kind>, clarify:<intent>, or clarify:rephrase when the caller is asked to say it again),
the form the gateway reads. The texts are in the conversation's language (the `language` slot, given by the gateway
when the call starts; foundation/languages/<code>.yml); the routing table is dialogues/routing.yml.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from dialogues.payment_calendar import CHILD_ALLOWANCE_PAY_DAY, next_payment_day
from dialogues.policy import concerns_agency, likeliest_matters
from foundation import vocabulary
from foundation.language import DialogueWords, LanguageError, load_language
from foundation.routing_table import RoutingTable

HERE = Path(__file__).resolve().parent
ROUTING = RoutingTable.load(HERE / "routing.yml")
DEFAULT_LANGUAGE = "en"

# Not understood: the caller is asked to say it again (not dismissed: "I can't help with that" is
# smalltalk:out_of_scope, said only of what is outside the agency's matters).
NOT_UNDERSTOOD = str(vocabulary.NOT_UNDERSTOOD)


def words_of(tracker: Tracker) -> DialogueWords:
    """What the dialogue says, in the conversation's language (English when none was given or it has no data)."""
    code = str(tracker.get_slot("language") or DEFAULT_LANGUAGE)
    try:
        return load_language(code).dialogue
    except LanguageError:
        return load_language(DEFAULT_LANGUAGE).dialogue


def _latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def _names_the_agencys_matters(tracker: Tracker) -> bool:
    """The caller's turn speaks of benefits, payments, decisions, letters, accounts or identity."""
    message = tracker.latest_message
    language = ((message.get("metadata") or {}).get("asr") or {}).get("language") or "en"
    return concerns_agency(str(message.get("text") or ""), str(language))


def _unsure_out_of_scope(tracker: Tracker) -> bool:
    intent = tracker.latest_message.get("intent") or {}
    unsure = float(intent.get("confidence") or 0.0) < ROUTING.dismiss_min_confidence
    return intent.get("name") == "out_of_scope" and unsure


def _may_be_about_the_agency(tracker: Tracker) -> bool:
    """The turn names the agency's matters, or the NLU called it out of scope without being sure: either way it
    must not be dismissed."""
    return _names_the_agencys_matters(tracker) or _unsure_out_of_scope(tracker)


def answer_text(words: DialogueWords, topic: str, today: date) -> str:
    return words.answers[topic].format(
        next_payment=words.dates.say(next_payment_day(today)),
        next_child_allowance=words.dates.say(next_payment_day(today, CHILD_ALLOWANCE_PAY_DAY)),
    )


def route(
    dispatcher: CollectingDispatcher, words: DialogueWords, queue: str, reason: str, intent: str
) -> list[EventType]:
    urgent = intent in ROUTING.urgent
    if urgent:
        text = words.say.route_urgent
    else:
        text = words.say.route.format(queue=words.queues.get(queue, words.queues[ROUTING.fallback_queue]))
    dispatcher.utter_message(
        text=text,
        json_message={
            "decision": f"route:{queue}",
            "queue": queue,
            "reason": reason,
            "intent": intent,
            "urgent": urgent,
        },
    )
    return [SlotSet("routed_queue", queue), SlotSet("clarify_intent", None), SlotSet("clarify_alternative", None)]


def answer(dispatcher: CollectingDispatcher, words: DialogueWords, intent: str) -> list[EventType]:
    """Answer the topic of ``intent`` and ask whether there is anything else."""
    topic = ROUTING.answers[intent]
    dispatcher.utter_message(
        text=answer_text(words, topic, date.today()), json_message={"decision": f"answer:{topic}", "topic": topic}
    )
    return [SlotSet("failed_understandings", 0), SlotSet("clarify_intent", None), SlotSet("clarify_alternative", None)]


def act_on(dispatcher: CollectingDispatcher, words: DialogueWords, intent: str) -> list[EventType]:
    """Do what the routing table says for ``intent``: answer its topic or route to its queue."""
    if intent in ROUTING.answers:
        # As after any answer, the next step is "anything else?" (so a "no" then ends the call, by rule).
        return answer(dispatcher, words, intent) + [FollowupAction("utter_anything_else")]
    queue = ROUTING.routes.get(intent, ROUTING.fallback_queue)
    return route(dispatcher, words, queue, f"intent {intent} (confirmed by the caller)", intent)


def ask_which(
    dispatcher: CollectingDispatcher, words: DialogueWords, intent: str, alternative: str | None
) -> list[EventType]:
    dispatcher.utter_message(
        text=words.say.which_matter.format(matter=words.name(intent)),
        json_message={"decision": f"clarify:{intent}", "alternative": alternative},
    )
    return [SlotSet("clarify_intent", intent), SlotSet("clarify_alternative", alternative)]


def offer_likeliest(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType]:
    """A benefit problem that fits no intent well is never dismissed: the first time, ask about the two likeliest
    matters; when that has already failed (or nothing can be named), put the caller through to a person."""
    words = words_of(tracker)
    ranking = tracker.latest_message.get("intent_ranking") or []
    options = likeliest_matters(ranking, words.matters)
    failures = int(tracker.get_slot("failed_understandings") or 0) + 1
    if failures >= ROUTING.max_failed_understandings or not options:
        reason = (
            "a benefit matter the assistant could not place"
            if _names_the_agencys_matters(tracker)
            else f"not understood {failures} times in a row"
        )
        events = route(dispatcher, words, ROUTING.fallback_queue, reason, "nlu_fallback")
        return events + [SlotSet("failed_understandings", 0)]
    first, second = options[0], options[1] if len(options) > 1 else None
    question = words.say.offer_matter.format(matter=words.name(first))
    if second:
        question += " " + words.say.offer_next.format(matter=words.name(second))
    dispatcher.utter_message(text=question, json_message={"decision": f"clarify:{first}", "alternative": second})
    return [
        SlotSet("clarify_intent", first),
        SlotSet("clarify_alternative", second),
        SlotSet("failed_understandings", failures),
    ]


def not_understood(dispatcher: CollectingDispatcher, tracker: Tracker, response: str | None = None) -> list[EventType]:
    """A turn the assistant cannot help with: say what it can do (``response``, else a generic text). After
    ``max_failed_understandings`` such turns in a row, route to a person."""
    words = words_of(tracker)
    failures = int(tracker.get_slot("failed_understandings") or 0) + 1
    if failures >= ROUTING.max_failed_understandings:
        reason = f"not understood {failures} times in a row"
        events = route(dispatcher, words, ROUTING.fallback_queue, reason, "nlu_fallback")
        return events + [SlotSet("failed_understandings", 0)]
    if response:
        dispatcher.utter_message(response=response)
    else:
        dispatcher.utter_message(text=words.say.not_understood, json_message={"decision": NOT_UNDERSTOOD})
    return [SlotSet("failed_understandings", failures)]


class ActionAnswerTopic(Action):
    def name(self) -> str:
        return "action_answer_topic"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = _latest_intent(tracker)
        words = words_of(tracker)
        topic = ROUTING.answers.get(intent)
        if topic is None:
            return route(dispatcher, words, ROUTING.fallback_queue, f"no answer configured for {intent}", intent)
        dispatcher.utter_message(
            text=answer_text(words, topic, date.today()),
            json_message={"decision": f"answer:{topic}", "topic": topic},
        )
        return [SlotSet("failed_understandings", 0)]


class ActionRouteCall(Action):
    def name(self) -> str:
        return "action_route_call"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = _latest_intent(tracker)
        queue = ROUTING.routes.get(intent, ROUTING.fallback_queue)
        reason = "caller asked for a person" if intent == "request_human" else f"intent {intent}"
        return route(dispatcher, words_of(tracker), queue, reason, intent)


class ActionHandleFallback(Action):
    """Not understood. When two intents are close, ask which one the caller meant (don't guess); otherwise
    say what the assistant can do, and after repeated failures route to a person."""

    def name(self) -> str:
        return "action_handle_fallback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        words = words_of(tracker)
        ranking = [r for r in tracker.latest_message.get("intent_ranking") or [] if r.get("name") in words.matters]
        likely = bool(ranking) and ranking[0]["confidence"] >= ROUTING.clarify_min_confidence
        # A turn that names nothing of the agency's and that the NLU is unsure is out of scope is offered matters
        # only when one is likely: on both dev sets every such turn was out of scope or gibberish, offered a matter
        # at 0.03-0.23 ("zxq plorb wibble": "is your call about required documents?"); asked to say it again
        # instead, the caller is still not dismissed.
        if _names_the_agencys_matters(tracker) or (_unsure_out_of_scope(tracker) and likely):
            return offer_likeliest(dispatcher, tracker)
        if len(ranking) >= 2:
            first, second = ranking[0], ranking[1]
            close = first["confidence"] - second["confidence"] < ROUTING.clarify_margin
            if close and likely:
                return ask_which(dispatcher, words, first["name"], second["name"])
        return not_understood(dispatcher, tracker)


class ActionResolveClarification(Action):
    """The caller's yes or no to "is your call about ...?"."""

    def name(self) -> str:
        return "action_resolve_clarification"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        pending = tracker.get_slot("clarify_intent")
        alternative = tracker.get_slot("clarify_alternative")
        said_yes = _latest_intent(tracker) == "affirm"
        words = words_of(tracker)
        if pending and said_yes:
            return act_on(dispatcher, words, pending)
        if pending and alternative:
            return ask_which(dispatcher, words, alternative, None)
        if pending:
            events = [SlotSet("clarify_intent", None), SlotSet("clarify_alternative", None)]
            return events + not_understood(dispatcher, tracker)
        # A yes or no after a plain "didn't understand": invite the question again.
        dispatcher.utter_message(response="utter_affirm" if said_yes else "utter_deny")
        return []


class ActionOutOfScope(Action):
    """Something the assistant does not handle: say what it can do; repeated, it routes to a person. A turn about
    the agency's matters is never dismissed so (see offer_likeliest)."""

    def name(self) -> str:
        return "action_out_of_scope"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if _may_be_about_the_agency(tracker):
            # Not out of scope after all: handled as not understood, whose yes/no rules then apply.
            return [FollowupAction("action_handle_fallback")]
        return not_understood(dispatcher, tracker, response="utter_out_of_scope")


class ActionRepeat(Action):
    """Says again what the assistant said last (all messages of its last turn)."""

    def name(self) -> str:
        return "action_repeat"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        last_turn: list[str] = []
        for event in reversed(tracker.events):
            if event.get("event") == "user" and last_turn:
                break
            if event.get("event") == "bot" and event.get("text"):
                last_turn.insert(0, event["text"])
        # The newest user event is the "repeat" request itself, so collect the bot texts before it.
        text = " ".join(last_turn) if last_turn else words_of(tracker).say.nothing_said_yet
        dispatcher.utter_message(text=text, json_message={"decision": "smalltalk:repeat"})
        return []


class ActionResetFailures(Action):
    def name(self) -> str:
        return "action_reset_failures"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return [SlotSet("failed_understandings", 0)]
