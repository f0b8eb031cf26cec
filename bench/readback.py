"""When to read a caller's words back: read-back thresholds scored on the spoken DEV set (never the held-out set).

    .venv/bin/python bench/readback.py [--set dev|fresh|trainer] [--per-intent 2] [--voices flite-slt,...]
                                       [--rows var/reports/readback-<set>.json [--decide-again]]

Each turn of a dev set (`--set`: nlu/dev/callers.yml, fresh.yml or trainer.yml; the first --per-intent of each intent)
is spoken by every simulated caller voice on a clean and on a degraded line, recognised as the line does it (the
packaged model, the domain prompt, the noise guard), and decided by the real Rasa dialogue as a first turn. A
read-back rule then either asks "I think you said ... Is that right?" (the turn counts as asked back) or lets that
decision stand (right, wrong action, dismissed or other). Every rule is scored on the same recognised turns, so the
table compares rules, not luck. The rows are saved; --rows reuses them without speaking again, and with
--decide-again has the model the stack serves now decide the same transcripts (a model compared on the words the line
heard, in about a minute instead of ten).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from foundation.routing_table import RoutingTable
from foundation.settings import Settings, TurnTakingSettings, load_settings
from helpline.machine import cpu_name, free_port
from helpline.services import Stack
from helpline.understanding import judge, spoken_plan
from nlu.asr_context import AsrVocabulary
from nlu.caller_turns import SETS, CallerTurn, CallerTurnsError, load_turns, sample, turns_of_rows
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
    turns_file: str = ""  # the set's file (the dev sets' turn ids repeat across their files); "" in older rows


def bench_settings() -> Settings:
    """The line's settings on free ports, so the bench's stack runs beside anything else."""
    base = load_settings()
    return base.model_copy(
        update={
            "gateway": base.gateway.model_copy(update={"port": free_port()}),
            "rasa": base.rasa.model_copy(update={"port": free_port(), "actions_port": free_port()}),
        }
    )


async def decide(rasa: RasaClient, transcript: str) -> tuple[str, float, str]:
    """The real dialogue's first-turn decision on ``transcript``: (intent, NLU confidence, decision)."""
    sender = f"readback-{uuid.uuid4().hex}"
    await rasa.start_call(sender)
    reply = await rasa.respond(transcript, sender, {"input": "speech"})
    return reply.intent, reply.confidence, str(reply.decision)


async def decide_again(turns_file: Path, saved: list[Row]) -> list[Row]:
    """The saved rows' transcripts decided again by the model the stack serves now (nothing spoken or recognised:
    a model or NLU setting compared on the very words the line heard)."""
    settings = bench_settings()
    routing = RoutingTable.load()
    try:
        turns = turns_of_rows(turns_file, [(row.turn_id, row.turns_file) for row in saved])
    except CallerTurnsError as e:
        raise SystemExit(f"{e}: pass their --set") from e
    rows: list[Row] = []
    with Stack(settings):
        rasa = RasaClient(settings.rasa.url, settings.rasa.timeout_s)
        try:
            for row in saved:
                if row.noise:  # the noise guard's verdict does not depend on the model
                    rows.append(row)
                    continue
                intent, confidence, decision = await decide(rasa, row.transcript)
                verdict = judge(turns[row.turn_id], decision, routing)
                rows.append(
                    dataclasses.replace(
                        row, nlu_intent=intent, nlu_confidence=confidence, decision=decision, verdict=verdict
                    )
                )
        finally:
            await rasa.aclose()
    return rows


async def recognise_and_decide(turns_file: Path, per_intent: int, voices: list[str]) -> list[Row]:
    settings = bench_settings()
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
                intent, confidence, decision = ("", 0.0, "reprompt") if noise else await decide(rasa, t.text)
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
                        turns_file.name,
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


def save(rows: list[Row], name: str) -> Path:
    out = load_settings().data_dir / "reports" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--set", choices=("dev", "fresh", "trainer"), default="dev", help="which dev set (never the held-out)"
    )
    parser.add_argument("--per-intent", type=int, default=2)
    parser.add_argument("--voices", default=",".join(CALLER_VOICES))
    parser.add_argument("--rows", type=Path, help="score the rows saved by an earlier run instead of speaking")
    parser.add_argument(
        "--decide-again",
        action="store_true",
        help="with --rows: have the model the stack serves now decide their transcripts (of --set) again",
    )
    args = parser.parse_args()
    routing = RoutingTable.load()
    smalltalk = frozenset(routing.smalltalk)
    if args.rows:
        rows = [Row(**r) for r in json.loads(args.rows.read_text())]
        if args.decide_again:
            t0 = time.monotonic()
            rows = asyncio.run(decide_again(SETS[args.set], rows))
            out = save(rows, f"readback-{args.set}-again.json")
            print(f"{len(rows)} saved transcripts decided again in {time.monotonic() - t0:.0f} s; rows: {out}")
    else:
        t0 = time.monotonic()
        rows = asyncio.run(recognise_and_decide(SETS[args.set], args.per_intent, args.voices.split(",")))
        out = save(rows, f"readback-{args.set}.json")
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
