"""Custom actions, run by the Rasa action server (`rasa run actions --actions dialogues.actions`, Python 3.10).

Each answer or routing step sends its text and a custom payload with the decision (answer:<topic>,
route:<queue>, smalltalk:<kind>), the form the gateway reads. Texts and the routing table are data files here.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from dialogues.payment_calendar import CHILD_ALLOWANCE_PAY_DAY, next_payment_day, spoken_date

HERE = Path(__file__).resolve().parent
ROUTING = yaml.safe_load((HERE / "routing.yml").read_text(encoding="utf-8"))
ANSWERS: dict[str, str] = yaml.safe_load((HERE / "answers.yml").read_text(encoding="utf-8"))

QUEUE_PHRASES = {
    "family": "our experts on family benefits",
    "sickness": "our experts on sickness benefit",
    "housing": "our experts on housing allowance",
    "appeals": "our team that reviews decisions",
    "payments_debt": "our team for payments and repayments",
    "fraud": "our team that handles suspected fraud",
    "general": "one of my colleagues",
}


def _latest_intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def answer_text(topic: str, today: date) -> str:
    template = ANSWERS[topic]
    return template.format(
        next_payment=spoken_date(next_payment_day(today)),
        next_child_allowance=spoken_date(next_payment_day(today, CHILD_ALLOWANCE_PAY_DAY)),
    )


def route(dispatcher: CollectingDispatcher, queue: str, reason: str, intent: str) -> list[EventType]:
    dispatcher.utter_message(
        text=(
            f"I'm putting you through to {QUEUE_PHRASES.get(queue, 'one of my colleagues')} now. "
            "They will see what you have told me, so you won't need to repeat it. Please hold."
        ),
        json_message={"decision": f"route:{queue}", "queue": queue, "reason": reason, "intent": intent},
    )
    return [SlotSet("routed_queue", queue)]


class ActionAnswerTopic(Action):
    def name(self) -> str:
        return "action_answer_topic"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = _latest_intent(tracker)
        topic = ROUTING["answers"].get(intent)
        if topic is None:
            return route(dispatcher, ROUTING["fallback_queue"], f"no answer configured for {intent}", intent)
        dispatcher.utter_message(
            text=answer_text(topic, date.today()),
            json_message={"decision": f"answer:{topic}", "topic": topic},
        )
        return [SlotSet("failed_understandings", 0)]


class ActionRouteCall(Action):
    def name(self) -> str:
        return "action_route_call"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = _latest_intent(tracker)
        queue = ROUTING["routes"].get(intent, ROUTING["fallback_queue"])
        reason = "caller asked for a person" if intent == "request_human" else f"intent {intent}"
        return route(dispatcher, queue, reason, intent)


class ActionHandleFallback(Action):
    """First failure: say what the assistant can do. After ``max_failed_understandings``: route to a person."""

    def name(self) -> str:
        return "action_handle_fallback"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        failures = int(tracker.get_slot("failed_understandings") or 0) + 1
        if failures >= int(ROUTING["max_failed_understandings"]):
            return route(
                dispatcher,
                ROUTING["fallback_queue"],
                f"not understood {failures} times in a row",
                "nlu_fallback",
            ) + [SlotSet("failed_understandings", 0)]
        dispatcher.utter_message(
            text=(
                "Sorry, I didn't quite understand. You can ask me about payment dates, opening hours, applications, "
                'documents or logging in, or say "a person" to talk to someone.'
            ),
            json_message={"decision": "smalltalk:out_of_scope"},
        )
        return [SlotSet("failed_understandings", failures)]


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
        text = " ".join(last_turn) if last_turn else "I haven't said anything yet. How can I help you?"
        dispatcher.utter_message(text=text, json_message={"decision": "smalltalk:repeat"})
        return []


class ActionResetFailures(Action):
    def name(self) -> str:
        return "action_reset_failures"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return [SlotSet("failed_understandings", 0)]
