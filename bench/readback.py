"""When to read a caller's words back: read-back thresholds scored on the spoken DEV set (never the held-out set).

    .venv/bin/python bench/readback.py [--set dev|fresh] [--per-intent 2] [--voices flite-slt,...]
                                       [--rows var/reports/readback-<set>.json]

Each turn of a dev set (`--set`: nlu/dev/callers.yml or nlu/dev/fresh.yml; the first --per-intent of each intent)
is spoken by every simulated caller voice on a clean and on a degraded line, recognised as the line does it (the
packaged model, the domain prompt, the noise guard), and decided by the real Rasa dialogue as a first turn. A
read-back rule then either asks "I think you said ... Is that right?" (the turn counts as asked back) or lets that
decision stand (right, wrong action, dismissed or other). Every rule is scored on the same recognised turns, so the
table compares rules, not luck. The rows are saved; --rows reuses them without speaking again.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from foundation.routing_table import RoutingTable
from foundation.settings import TurnTakingSettings, load_settings
from helpline.machine import cpu_name, free_port
from helpline.services import Stack
from helpline.understanding import judge, spoken_plan
from nlu.asr_context import AsrVocabulary
from nlu.caller_turns import SETS, CallerTurn, load_turns, sample
from nlu.client import RasaClient
from telephony.guards import heard_noise
from telephony.turn_policy import worth_reading_back
from voice import line_conditions
from voice.asr import create_asr
from voice.caller_voices import CALLER_VOICES
from voice.codecs import TELEPHONE_RATE


@dataclass
class Row:
    """One spoken dev turn as the line heard and decided it, before any read-back."""

    turn_id: str
    intent: str
    voice: str
    condition: str
    transcript: str
    asr_confidence: float
    noise: bool
    nlu_intent: str
    nlu_confidence: float
    decision: str
    verdict: str  # the verdict on ``decision`` if the line acts on it


async def recognise_and_decide(turns_file: Path, per_intent: int, voices: list[str]) -> list[Row]:
    base = load_settings()
    settings = base.model_copy(
        update={
            "gateway": base.gateway.model_copy(update={"port": free_port()}),
            "rasa": base.rasa.model_copy(update={"port": free_port(), "actions_port": free_port()}),
        }
    )
    routing = RoutingTable.load()
    asr = create_asr(settings.asr)
    context = AsrVocabulary.load(settings.asr.language).context(None) if settings.asr.biasing else None
    turns: list[CallerTurn] = sample(load_turns(turns_file), per_intent)
    rows: list[Row] = []
    with Stack(settings):
        rasa = RasaClient(settings.rasa.url, settings.rasa.timeout_s)
        try:
            plan = spoken_plan(turns, [CALLER_VOICES[name] for name in voices])
            for n, (turn, voice, condition) in enumerate(plan, 1):
                if n % 100 == 0:
                    print(f"  {n}/{len(plan)} spoken turns", flush=True)
                seed = line_conditions.seed_of(voice.name, turn.id, condition.name)
                audio = line_conditions.apply(voice.speak(turn.text, condition.rate), condition, seed)
                t = await asyncio.to_thread(asr.transcribe, audio, TELEPHONE_RATE, context)
                noise = t.is_empty or heard_noise(
                    t.text, t.confidence, t.no_speech, context.prompt if context else None
                )
                if noise:
                    intent, confidence, decision = "", 0.0, "reprompt"
                else:
                    sender = f"readback-{uuid.uuid4().hex}"
                    await rasa.start_call(sender)
                    reply = await rasa.respond(t.text, sender, {"input": "speech"})
                    intent, confidence, decision = reply.intent, reply.confidence, str(reply.decision)
                verdict = judge(turn, decision, routing)
                rows.append(
                    Row(
                        turn.id,
                        turn.intent,
                        voice.name,
                        condition.name,
                        t.text,
                        t.confidence,
                        noise,
                        intent,
                        confidence,
                        decision,
                        verdict,
                    )
                )
        finally:
            await rasa.aclose()
    return rows


Rule = Callable[[Row, frozenset[str]], bool]  # True: read the transcript back


def reads_back(
    asr_below: float, nlu_below: float, floor: float = TurnTakingSettings().confirm_always_below_confidence
) -> Rule:
    """The line's rule (TurnTakingSettings): ASR confidence under ``asr_below`` and the NLU's under ``nlu_below``
    (or the ASR's under ``floor``), and not small talk."""
    return lambda r, smalltalk: (
        r.asr_confidence < asr_below
        and worth_reading_back(r.nlu_intent, r.nlu_confidence, smalltalk, nlu_below, r.asr_confidence, floor)
    )


ASR_BELOW = (0.0, 0.45, 0.55, 0.65, 0.75, 0.85)
NLU_BELOW = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# What a caller loses, counted in read-backs: a wrong answer or a wrong queue costs them about three (the wrong
# reply heard out, the question asked again, and for a wrong queue a transfer); the rules are ranked by it.
WRONG_ACTION_COST = 3.0


def score(rows: list[Row], rule: Rule, smalltalk: frozenset[str]) -> dict[str, float]:
    counts = {"right": 0, "asked_back": 0, "wrong_action": 0, "other": 0}
    for r in rows:
        if not r.noise and rule(r, smalltalk):
            counts["asked_back"] += 1
        elif r.verdict == "dismissed":
            counts["wrong_action"] += 1
        else:
            counts[r.verdict if r.verdict in counts else "other"] += 1
    n = max(1, len(rows))
    return {k: v / n for k, v in counts.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("dev", "fresh"), default="dev", help="which dev set (never the held-out)")
    parser.add_argument("--per-intent", type=int, default=2)
    parser.add_argument("--voices", default=",".join(CALLER_VOICES))
    parser.add_argument("--rows", type=Path, help="score the rows saved by an earlier run instead of speaking")
    args = parser.parse_args()
    routing = RoutingTable.load()
    smalltalk = frozenset(routing.smalltalk)
    if args.rows:
        rows = [Row(**r) for r in json.loads(args.rows.read_text())]
    else:
        t0 = time.monotonic()
        rows = asyncio.run(recognise_and_decide(SETS[args.set], args.per_intent, args.voices.split(",")))
        out = load_settings().data_dir / "reports" / f"readback-{args.set}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps([asdict(r) for r in rows], indent=1))
        print(f"{len(rows)} spoken dev turns recognised and decided in {time.monotonic() - t0:.0f} s ({cpu_name()}); "
              f"rows: {out}")  # fmt: skip
    current = TurnTakingSettings()
    scored = []
    for a in ASR_BELOW:
        for b in NLU_BELOW:
            r = score(rows, reads_back(a, b), smalltalk)
            scored.append((r["asked_back"] + WRONG_ACTION_COST * r["wrong_action"], a, b, r))
    scored.sort(key=lambda x: x[0])
    print(f"\nread back when ASR < a and NLU < b, best first by asked back + {WRONG_ACTION_COST:g} x wrong action")
    print(f"{'a':>6}{'b':>6}{'right':>8}{'asked back':>12}{'wrong action':>14}{'other':>8}{'cost':>8}")
    for cost, a, b, r in scored:
        mark = (
            "  <- in force"
            if (a, b) == (current.confirm_below_confidence, current.confirm_below_nlu_confidence)
            else ""
        )
        print(f"{a:>6.2f}{b:>6.2f}{r['right']:>8.3f}{r['asked_back']:>12.1%}{r['wrong_action']:>14.1%}"
              f"{r['other']:>8.1%}{cost:>8.3f}{mark}")  # fmt: skip
    by_line: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        by_line.setdefault((row.voice, row.condition), []).append(row)
    print("\nif acted on without read-back, per voice and line: right / wrong action")
    for (voice, condition), part in sorted(by_line.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        s = score(part, reads_back(0.0, 0.0, 0.0), smalltalk)
        print(f"  {voice:12}{condition:10}{s['right']:>7.3f}{s['wrong_action']:>8.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
