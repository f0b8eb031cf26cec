"""How the line understands callers it has never heard, judged as the caller experiences it.

Each caller turn's decision is one of: right (what the routing table does with a right reading of the turn), asked
back (a read-back of the transcript, "is your call about ...?" or "please say it again"), a wrong action (answered
or routed the wrong way), dismissed (told "I can't help with that" about a benefit problem), or other (the wrong
small talk). Typed turns go through the real Rasa dialogue (NLU, rules, the action server's policy); spoken turns
are first turns of real calls through the gateway over Twilio's protocol, spoken by simulated callers on simulated
phone lines.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from foundation.routing_table import RoutingTable
from foundation.settings import Settings
from foundation.vocabulary import NOT_UNDERSTOOD as NOT_UNDERSTOOD_DECISION
from foundation.vocabulary import OUT_OF_SCOPE
from helpline.trainer import routing_decision
from nlu.asr_context import AsrVocabulary
from nlu.caller_turns import CallerTurn
from nlu.client import RasaClient
from telephony.softphone import Say, Softphone, SoftphoneError
from voice.caller_voices import CallerVoice
from voice.line_conditions import CLEAN, LineCondition, apply, degraded, seed_of

VERDICTS = ("right", "asked_back", "wrong_action", "dismissed", "other")
DISMISSED = str(OUT_OF_SCOPE)
NOT_UNDERSTOOD = str(
    NOT_UNDERSTOOD_DECISION
)  # "Sorry, I didn't quite understand. You can ask me about ...": asked again


def is_benefit_problem(turn: CallerTurn, routing: RoutingTable) -> bool:
    """The turn concerns the agency's benefits, payments, decisions, letters, accounts or identity."""
    return turn.intent in routing.answers or (turn.intent in routing.routes and turn.intent != "request_human")


def judge(turn: CallerTurn, decision: str, routing: RoutingTable) -> str:
    """The verdict on ``decision`` for ``turn`` (one of VERDICTS)."""
    if decision in {routing_decision(intent, routing) for intent in turn.intents}:
        return "right"
    if decision == NOT_UNDERSTOOD and "out_of_scope" in turn.intents:
        return "right"  # both replies tell a caller with a matter outside the line what it can help with
    if decision.startswith(("clarify:", "confirm:")):
        return "asked_back"
    if decision == DISMISSED and turn.intent != "out_of_scope":
        return "dismissed"
    if decision.startswith(("answer:", "route:")):
        return "wrong_action"
    return "other"


@dataclass
class Judged:
    """One turn's outcome: what was said, what the line heard and did, and the verdict."""

    turn: CallerTurn
    voice: str
    condition: str
    transcript: str
    decision: str
    verdict: str
    key_words_said: tuple[str, ...] = ()
    key_words_heard: tuple[str, ...] = ()


@dataclass
class Scores:
    """Rates over a set of judged turns (wrong-action rate counts dismissals: both are the wrong thing done; other:
    none of these, e.g. no decision in the first turn, or a greeting answered as small talk)."""

    n: int
    right: float
    asked_back: float
    wrong_action: float
    other: float
    dismissed_benefit_problems: int
    key_word_recall: float | None
    confusions: list[tuple[str, str, int]] = field(default_factory=list)

    @classmethod
    def of(cls, judged: list[Judged], routing: RoutingTable) -> Scores:
        n = max(1, len(judged))
        verdicts = Counter(j.verdict for j in judged)
        said = sum(len(j.key_words_said) for j in judged)
        heard = sum(sum(w in j.key_words_heard for w in j.key_words_said) for j in judged)
        misses = Counter((routing_decision(j.turn.intent, routing), j.decision) for j in judged if j.verdict != "right")
        return cls(
            n=len(judged),
            right=verdicts["right"] / n,
            asked_back=verdicts["asked_back"] / n,
            wrong_action=(verdicts["wrong_action"] + verdicts["dismissed"]) / n,
            other=verdicts["other"] / n,
            dismissed_benefit_problems=sum(
                j.verdict == "dismissed" and is_benefit_problem(j.turn, routing) for j in judged
            ),
            key_word_recall=heard / said if said else None,
            confusions=[(want, got, count) for (want, got), count in misses.most_common(8)],
        )

    @property
    def right_interval(self) -> tuple[float, float]:
        """Where the share right of callers like these lies, 95 % of the time (Wilson score interval): 26 turns of a
        voice on a line say "0.846" but mean anything from 0.665 to 0.938."""
        return wilson_interval(round(self.right * self.n), self.n)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (``z`` 1.96: 95 %); (0, 1) when nothing was counted."""
    if n <= 0:
        return 0.0, 1.0
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


async def judge_typed(settings: Settings, turns: list[CallerTurn], at_once: int = 8) -> list[Judged]:
    """Each turn typed as the first turn of a new conversation with the real Rasa server and action server."""
    routing = RoutingTable.load()
    rasa = RasaClient(settings.rasa.url, settings.rasa.timeout_s)
    semaphore = asyncio.Semaphore(at_once)

    async def one(turn: CallerTurn) -> Judged:
        async with semaphore:
            sender = f"eval-{uuid.uuid4().hex}"
            await rasa.start_call(sender)
            reply = await rasa.respond(turn.text, sender, {"input": "typed"})
        return Judged(turn, "typed", "text", turn.text, str(reply.decision), judge(turn, str(reply.decision), routing))

    try:
        return list(await asyncio.gather(*(one(t) for t in turns)))
    finally:
        await rasa.aclose()


def spoken_plan(
    turns: list[CallerTurn], voices: Iterable[CallerVoice], conditions: tuple[str, ...] = ("clean", "degraded")
) -> list[tuple[CallerTurn, CallerVoice, LineCondition]]:
    """Every turn by every voice on every condition; a degraded line is drawn per (voice, turn), the same each run."""
    plan = []
    for voice in voices:
        for turn in turns:
            for name in conditions:
                condition = CLEAN if name == "clean" else degraded(seed_of(voice.name, turn.id))
                plan.append((turn, voice, condition))
    return plan


def rotating_plan(
    turns: list[CallerTurn], voices: list[CallerVoice]
) -> list[tuple[CallerTurn, CallerVoice, LineCondition]]:
    """Each turn once, the voices taking turns and every other call on a degraded line: a small fixed sample that
    still has every voice and both conditions in it (the CI gate's; the bench speaks everything)."""
    plan = []
    for i, turn in enumerate(turns):
        voice = voices[i % len(voices)]
        condition = degraded(seed_of(voice.name, turn.id)) if i % 2 else CLEAN
        plan.append((turn, voice, condition))
    return plan


async def judge_spoken(
    settings: Settings,
    plan: list[tuple[CallerTurn, CallerVoice, LineCondition]],
    at_once: int = 3,
    speed: float = 3.0,
    progress: bool = False,
) -> list[Judged]:
    """Each planned turn spoken into a real call through the gateway; the call's first turn is judged."""
    routing = RoutingTable.load()
    vocabulary = AsrVocabulary.load(settings.asr.language)
    semaphore = asyncio.Semaphore(at_once)
    done = 0

    async def one(turn: CallerTurn, voice: CallerVoice, condition: LineCondition) -> Judged:
        nonlocal done
        seed = seed_of(voice.name, turn.id, condition.name)
        audio = await asyncio.to_thread(lambda: apply(voice.speak(turn.text, condition.rate), condition, seed))
        async with semaphore:
            try:
                result = await Softphone(settings, speed=speed).call([Say(audio)])
                first = result.turns[0] if result.turns else {}
            except SoftphoneError as e:
                first = {"transcript": "", "decision": f"dropped: {e}"}
        done += 1
        if progress and done % 50 == 0:
            print(f"  {done}/{len(plan)} calls", flush=True)
        decision = str(first.get("decision") or "no decision")
        transcript = str(first.get("transcript") or "")
        return Judged(
            turn,
            voice.name,
            condition.name,
            transcript,
            decision,
            judge(turn, decision, routing),
            tuple(vocabulary.key_words_in(turn.text)),
            tuple(vocabulary.key_words_in(transcript)),
        )

    return list(await asyncio.gather(*(one(*p) for p in plan)))
