"""Intent classifiers compared on the dev sets: the trained Rasa model, the encoder probe, and blends of the two.

    .venv-rasa/bin/python bench/classifiers.py [--model var/models/helpline-<hash>.tar.gz] [--weights 0.25,0.5]
                                               [--temperature T[,T]] [--neighbours 0,0.5] [--show W]
                                               [--heard fresh:var/reports/readback-fresh.json]

Parses every turn of the dev sets (nlu/dev/callers.yml, fresh.yml and trainer.yml; never the frozen held-out set)
with the trained Rasa model, and with a softmax probe on the vectors of nlu/config.yml's encoder, trained on the same
examples (nlu/intent_probe.py), then scores each mix ``(1 - w) * model + w * probe`` (with a model whose pipeline
has no BlendedIntentClassifier, or one with ``probe_weight: 0``, "model" is DIET alone); ``--neighbours``: the probe
also with these shares of its nearest training examples' vote mixed in. Scores: top intent right (a turn with two
requests is right either way), macro-F1 over the labelled intents, how often the top intent is wrong while at least
0.70 sure (what the dialogue acts on without asking), how often it is right but under 0.70 (a transcript the line is
unsure of is then read back) and how often under the fallback threshold (nlu/config.yml: not understood). Also
prints the time a parse takes (the whole NLU pipeline, p50/p95), with the CPU named. ``--heard SET:ROWS`` also
scores a dev set as the line heard it (the transcripts bench/readback.py saved: five voices, clean and degraded line;
its rows are shown as ``SET~``). Run it in the Rasa venv.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from helpline.machine import cpu_name  # noqa: E402
from nlu.caller_turns import SETS, CallerTurn, CallerTurnsError, load_turns, turns_of_rows  # noqa: E402
from nlu.intent_probe import STEPS, IntentProbe, blend, macro_f1  # noqa: E402
from nlu.sentence_encoder import MINILM, SentenceEncoder  # noqa: E402
from nlu.training_data import training_examples  # noqa: E402

SURE = 0.70  # the dialogue acts on an NLU reading at least this sure without reading it back


def pipeline_component(suffix: str) -> dict[str, object]:
    """The first component of nlu/config.yml's pipeline whose name ends with ``suffix``."""
    import yaml

    pipeline = yaml.safe_load((ROOT / "nlu" / "config.yml").read_text(encoding="utf-8"))["pipeline"]
    return next(c for c in pipeline if c["name"].endswith(suffix))  # type: ignore[no-any-return]


def fallback_threshold() -> float:
    """The FallbackClassifier's threshold in nlu/config.yml: below it a turn is not understood."""
    return float(pipeline_component("FallbackClassifier")["threshold"])  # type: ignore[arg-type]


FALLBACK = fallback_threshold()


def configured_encoder() -> str:
    """The sentence encoder nlu/config.yml gives the featurizer (what the model's own probe reads)."""
    return str(pipeline_component("SentenceEncoderFeaturizer").get("encoder", MINILM))


def newest_model() -> Path:
    models = sorted((ROOT / "var" / "models").glob("helpline-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    if not models:
        raise SystemExit("no trained model in var/models: run ./setup.sh or `helpline train` first")
    return models[-1]


def diet_rankings(model: Path, texts: list[str]) -> tuple[list[dict[str, float]], list[float]]:
    """Each text's intent ranking from the Rasa model, without the fallback pseudo-intent, and the milliseconds each
    parse took (the whole NLU pipeline)."""
    from nlu import rasa_fast_load

    rasa_fast_load.install()
    from rasa.core.agent import Agent
    from rasa.utils.common import configure_logging_and_warnings
    from rasa.utils.log_utils import configure_structlog

    configure_logging_and_warnings(logging.WARNING)
    configure_structlog(logging.WARNING)  # not a line per parse

    agent = Agent.load(str(model))

    milliseconds = []

    async def parse_all() -> list[dict[str, float]]:
        out = []
        for text in texts:
            t0 = time.perf_counter()
            parsed = await agent.parse_message(text)
            milliseconds.append((time.perf_counter() - t0) * 1000)
            ranking = parsed["intent_ranking"]
            out.append({r["name"]: float(r["confidence"]) for r in ranking if r["name"] != "nlu_fallback"})
        return out

    return asyncio.run(parse_all()), milliseconds


def scores(turns: list[CallerTurn], rankings: list[dict[str, float]]) -> tuple[float, float, float, float, float]:
    """(share right, macro-F1, share wrong and sure, share right but unsure, share under the fallback threshold)
    of the top intents."""
    top = [max(r, key=r.__getitem__) if r else "" for r in rankings]
    right = [t in turn.intents for t, turn in zip(top, turns, strict=True)]
    sure_wrong = [not ok and r.get(t, 0.0) >= SURE for ok, t, r in zip(right, top, rankings, strict=True)]
    predicted = [turn.intent if ok else t for ok, t, turn in zip(right, top, turns, strict=True)]
    confidence = [r.get(t, 0.0) for t, r in zip(top, rankings, strict=True)]
    unsure_right = [ok and c < SURE for ok, c in zip(right, confidence, strict=True)]
    under = [c < FALLBACK for c in confidence]
    return (
        float(np.mean(right)),
        macro_f1(predicted, [turn.intent for turn in turns]),
        float(np.mean(sure_wrong)),
        float(np.mean(unsure_right)),
        float(np.mean(under)),
    )


def heard_turns(turns_file: Path, rows_file: Path) -> list[CallerTurn]:
    """The turns as the line heard them: each row bench/readback.py saved (a turn spoken by one voice on one line)
    with its transcript as the text and its turn's labels; rows the noise guard took for noise are left out (the NLU
    never sees them), and rows of another set are refused."""
    rows = json.loads(rows_file.read_text(encoding="utf-8"))
    try:
        by_id = turns_of_rows(turns_file, [(r["turn_id"], r.get("turns_file", "")) for r in rows])
    except CallerTurnsError as e:
        raise SystemExit(f"--heard {rows_file}: {e}") from e
    return [dataclasses.replace(by_id[r["turn_id"]], text=r["transcript"]) for r in rows if not r["noise"]]


def probe_label(temperature: float, share: float, several_temperatures: bool) -> str:
    """How a row names the probe's temperature (when several are compared) and its nearest-example share."""
    return (f" T={temperature:g}" if several_temperatures else "") + (f" nn={share:g}" if share else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="a trained Rasa model (default: the newest)")
    parser.add_argument("--weights", default="0.25,0.4,0.5,0.6,0.75", help="probe weights to try")
    parser.add_argument("--steps", type=int, default=STEPS, help="the probe's training steps")
    parser.add_argument(
        "--temperature", default=None, help="the probe's, or several to compare: 0.3,0.4 (default: fitted on dev)"
    )
    parser.add_argument("--neighbours", default="0,0.5", help="shares of the nearest-example vote in the probe to try")
    parser.add_argument("--show", type=float, default=None, help="print the turns this weight gets wrong")
    parser.add_argument(
        "--heard",
        action="append",
        default=[],
        metavar="SET:ROWS",
        help="also score a dev set as the line heard it: bench/readback.py's saved rows, e.g. "
        "fresh:var/reports/readback-fresh.json (repeatable)",
    )
    args = parser.parse_args()
    model = args.model or newest_model()
    weights = [float(w) for w in args.weights.split(",")]
    shares = [float(s) for s in args.neighbours.split(",")]
    sets = {name: load_turns(SETS[name]) for name in ("dev", "fresh", "trainer")}
    for heard in args.heard:
        name, _, rows = heard.partition(":")
        sets[f"{name}~"] = heard_turns(SETS[name], Path(rows))

    encoder = SentenceEncoder.named(configured_encoder())  # --model trained with another encoder: its probe differs
    examples = training_examples()
    t0 = time.process_time()
    train_x = encoder.encode([text for _, text in examples])
    probe = IntentProbe.fit(train_x, [intent for intent, _ in examples], steps=args.steps)
    print(f"probe: {len(examples)} examples, {time.process_time() - t0:.1f} s CPU to embed and train")

    vectors = {name: encoder.encode([t.text for t in turns]) for name, turns in sets.items()}  # each turn once
    known = [i for i, t in enumerate(sets["dev"]) if t.intent in probe.labels]
    fitted = probe.temperature(vectors["dev"][known], [sets["dev"][i].intent for i in known])
    temperatures = [float(t) for t in args.temperature.split(",")] if args.temperature else [fitted]
    several = len(temperatures) > 1
    print(f"probe temperature {', '.join(f'{t:g}' for t in temperatures)} (least log loss on the dev set: {fitted:g})")
    print(f"model: {model.name}")
    rankings, milliseconds = diet_rankings(model, [t.text for turns in sets.values() for t in turns])
    p50, p95 = np.percentile(milliseconds, [50, 95])
    print(f"parse, the model's whole NLU pipeline: p50 {p50:.0f} ms, p95 {p95:.0f} ms per turn ({cpu_name()})")
    parsed = iter(rankings)
    print(
        f"{'set':<7}{'classifier':<28}{'right':>7}{'macro-F1':>9}{'sure & wrong':>13}{'right, unsure':>14}"
        f"{'< fallback':>11}"
    )
    for name, turns in sets.items():
        modelled = [next(parsed) for _ in turns]
        rows = {"model": modelled}
        for temperature, share in itertools.product(temperatures, shares):
            p = probe.probabilities(vectors[name], temperature, share)
            probed = [dict(zip(probe.labels, map(float, row), strict=True)) for row in p]
            nn = probe_label(temperature, share, several)
            rows[f"probe{nn}"] = probed
            for w in weights:
                rows[f"blend w={w:g}{nn}"] = [blend(d, q, w) for d, q in zip(modelled, probed, strict=True)]
        for label, ranked in rows.items():
            right, f1, sure_wrong, unsure_right, under = scores(turns, ranked)
            print(f"{name:<7}{label:<28}{right:>7.3f}{f1:>9.3f}{sure_wrong:>12.1%}{unsure_right:>13.1%}{under:>10.1%}")
        if args.show is not None:
            shown = rows["probe" + probe_label(temperatures[0], shares[0], several)]  # the first asked for
            for turn, d, q in zip(turns, modelled, shown, strict=True):
                mixed = blend(d, q, args.show)
                top = next(iter(mixed))
                if top not in turn.intents:
                    print(f"   {turn.intent} -> {top} {mixed[top]:.2f}: {turn.text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
