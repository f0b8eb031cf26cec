"""`helpline seed-demo`: a mix of calls, placed for real through the whole stack, then spread over the past days, so a
new user's dashboard has something to show on every page (trends, movers, answers, drivers). Every row comes from a
call the gateway handled; the one thing written to the store directly is the move of each finished call's times to
its day (``CallStore.move_call``). Callers with reasons the assistant has no intent for yet (a rent rise, the app
failing on an upload) call more in the recent days, so the drivers page shows them growing.

Callers are synthesised by Piper and dial in a few at a time; about one call in seven comes from a number that
called earlier (repeat callers). Routed calls reach their queue through the Twilio REST stand-in, and simulated
experts then take and complete them by the same signed TaskRouter callbacks Twilio would send.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from analytics.store import CallStore
from foundation.plain_words import as_utc
from foundation.settings import Settings
from helpline.demo import with_twilio_standin
from helpline.services import ServiceError, Stack

# (caller turns, share of the day). A turn is text to say, or "key:N" for a key press.
SCENARIOS: tuple[tuple[tuple[str, ...], int], ...] = (
    (("When is the child allowance paid?", "No thanks, goodbye."), 6),
    (("What are your opening hours?", "Thank you, bye."), 5),
    (("How do I apply for parental benefit?", "Okay. How long does a decision take?", "No, that was all."), 3),
    (("I can't log in to the website with my e-ID.", "Goodbye."), 3),
    (("Which documents do I need to send for sickness benefit?", "No, that's everything, thanks."), 2),
    (("How do I report a new address?", "Thanks, bye."), 2),
    (("key:1", "No thanks, goodbye."), 2),
    (("My sickness benefit was stopped and I don't understand why.",), 3),
    (("I want to appeal the decision on my housing allowance.",), 2),
    (("I have not received my payment this month.",), 3),
    (("I got a letter saying I have to pay back housing allowance.",), 2),
    (("My ex and I disagree about who gets the child allowance.",), 1),
    (("I want to report someone who is cheating with benefits.",), 1),
    (("Can I talk to a person please?",), 2),
    # Answers that did not land: the same question again, or a person after the answer (the answers page).
    (("What are your opening hours?", "What are your opening hours?", "Thanks, bye."), 1),
    (("How long does a decision take?", "Can I talk to a person please?"), 1),
    ((), 2),  # hangs up after the greeting
    # Reasons the assistant has no intent for yet: the call drivers page finds those it does not understand.
    (("My landlord raised the rent and I don't know what happens now.", "Goodbye."), 2),
    (("My landlord put the rent up, does that change anything for me?", "Goodbye."), 2),
    (("The upload in your app fails with an error every time.", "Goodbye."), 2),
    (("Your app crashes every time I upload my certificate.", "Goodbye."), 2),
)
NEW_REASONS = frozenset(turns for turns, _ in SCENARIOS[-4:])
OPEN_HOURS = (8, 17)  # calls are spread over the agency's opening hours
REPEAT_SHARE = 0.15  # calls from a number that already called today (failure demand shows up in the repeat KPI)


@dataclass(frozen=True)
class SeedResult:
    calls: int
    outcomes: dict[str, int]
    dropped: int


def _caller_turns(voice: Any, turns: tuple[str, ...]) -> list[Any]:
    from telephony.softphone import Press
    from voice.codecs import TELEPHONE_RATE

    actions: list[Any] = []
    for turn in turns:
        if turn.startswith("key:"):
            actions.append(Press(turn.removeprefix("key:")))
        else:
            speech = voice.synthesize(turn)
            actions.append(speech.samples_at(TELEPHONE_RATE))
    return actions


def _expert_events(settings: Settings, packet: dict, rng: random.Random) -> None:  # type: ignore[type-arg]
    """A simulated expert takes the task and completes it: TaskRouter's event callbacks, signed like Twilio's."""
    from telephony.line import EVENTS_PATH, public_url

    url = public_url(settings, EVENTS_PATH)
    validator = RequestValidator(settings.twilio_auth_token)
    now = int(time.time())
    accepted = now + rng.randint(10, 120)
    completed = accepted + rng.randint(180, 720)
    task = "WT" + "".join(rng.choice("0123456789abcdef") for _ in range(32))
    for event, at in (("task.created", now), ("reservation.accepted", accepted), ("task.completed", completed)):
        params = {"EventType": event, "TaskSid": task, "TaskAttributes": json.dumps(packet), "Timestamp": str(at)}
        httpx.post(
            f"{settings.gateway_url}{EVENTS_PATH}",
            data=params,
            headers={"X-Twilio-Signature": validator.compute_signature(url, params)},
            timeout=10,
        ).raise_for_status()


def day_plan(plan: list[tuple[str, ...]], days: int, rng: random.Random) -> list[int]:
    """How many days ago each call is placed: any day of the last ``days``, a new reason in the recent half."""
    return [rng.randrange((days + 1) // 2 if turns in NEW_REASONS else days) for turns in plan]


def spread(store: Any, placed: list[tuple[str, int]], zone: Any, rng: random.Random) -> None:
    """Move each placed call (call sid, days ago) to its day, at a time within opening hours."""
    for call_sid, days_ago in placed:
        call = store.call(call_sid)
        if call is None:
            continue
        started = as_utc(call.started_at)
        day = (started.astimezone(zone) - timedelta(days=days_ago)).date()
        minute = rng.randrange(OPEN_HOURS[0] * 60, OPEN_HOURS[1] * 60)
        target = datetime.combine(day, dtime(minute // 60, minute % 60), zone)
        store.move_call(call_sid, min(target.astimezone(UTC) - started, timedelta(0)))


def seed_day(settings: Settings, calls: int, at_once: int, speed: float, seed: int = 25, days: int = 1) -> SeedResult:
    from telephony.softphone import Softphone
    from voice.caller_voices import piper_caller

    rng = random.Random(seed)
    voice = piper_caller()
    weights = [w for _, w in SCENARIOS]
    plan = [rng.choices(SCENARIOS, weights)[0][0] for _ in range(calls)]
    numbers: list[str] = []
    for _ in range(calls):
        again = bool(numbers) and rng.random() < REPEAT_SHARE
        numbers.append(rng.choice(numbers) if again else f"+4670{rng.randint(1000000, 9999999)}")
    audio = {turns: _caller_turns(voice, turns) for turns in set(plan)}
    print(f"{len(audio)} caller scenarios synthesised; placing {calls} calls, {at_once} at a time", flush=True)

    async def place_all() -> list[dict]:  # type: ignore[type-arg]
        gate = asyncio.Semaphore(at_once)

        async def one(i: int) -> dict:  # type: ignore[type-arg]
            async with gate:
                phone = Softphone(settings, speed=speed, caller_number=numbers[i])
                try:
                    result = (await phone.call(audio[plan[i]])).as_dict()
                except Exception as e:  # a call that fails is counted, and the day goes on
                    return {"outcome": "dropped", "error": repr(e)}
                if result.get("packet"):
                    await asyncio.to_thread(_expert_events, settings, result["packet"], rng)
                print(f"call {i + 1}/{calls}: {result['outcome']}", flush=True)
                return result

        return await asyncio.gather(*(one(i) for i in range(calls)))

    with with_twilio_standin(settings) as (settings, _), Stack(settings):
        results = asyncio.run(place_all())
    if days > 1:
        ago = day_plan(plan, days, rng)
        placed = [(r["call_sid"], ago[i]) for i, r in enumerate(results) if r.get("call_sid")]
        store = CallStore.open(settings.database)
        try:
            spread(store, placed, settings.zone, rng)
        finally:
            store.close()
        print(f"spread over the last {days} days, within opening hours", flush=True)
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    return SeedResult(calls=len(results), outcomes=outcomes, dropped=outcomes.get("dropped", 0))


def run_seed_demo(settings: Settings, calls: int, at_once: int, speed: float, days: int = 14) -> int:
    try:
        result = seed_day(settings, calls, at_once, speed, days=days)
    except ServiceError as e:
        print(f"helpline: seed-demo failed: {e}")
        return 1
    print(f"{result.calls} calls placed: " + ", ".join(f"{k} {v}" for k, v in sorted(result.outcomes.items())))
    print("see them: `helpline serve`, then http://127.0.0.1:8080/dashboard (a supervisor login: `helpline users add`)")
    return 0 if result.dropped == 0 else 1
