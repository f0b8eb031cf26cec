"""What the recogniser makes of callers it has never heard, and of noise when nobody speaks, per packaged model.

    .venv/bin/python bench/recognition.py [--models tiny.en,base] [--windows 30,15] [--beams 1,5]
        [--compute-types int8,float32] [--no-speech-thresholds 0.6,0.5] [--per-intent 1] [--no-noise]
    .venv/bin/python bench/recognition.py --noise-scores var/bench/noise-tiny.en-int8-30s-beam1.json
    .venv/bin/python bench/recognition.py --line-parts [--per-intent 1]
    .venv/bin/python bench/recognition.py --repair [--cache var/bench/key-word-transcripts.jsonl] [--prompt TEXT]

Speech: the first --per-intent dev turns of each intent (nlu/dev/callers.yml; never the frozen held-out set) spoken
by every simulated caller voice on a clean line and on a degraded one (voice/line_conditions.py), recognised as the
line does it (the domain prompt). Per model, voice and line: word error rate against the text, recall of the
agency's key words (nlu/asr_context.yml), the share of utterances the line would be unsure of (ASR confidence under
TURN_TAKING__CONFIRM_BELOW_CONFIDENCE: read back unless the NLU is sure) and CPU seconds per utterance; also per
encoder window (ASR__WINDOW_S), beam size (ASR__BEAM_SIZE) and compute type (ASR__COMPUTE_TYPE).
Noise: for each spoken turn, the same length of babble (that speech reversed and overlaid), street rumble, pink
noise and white hiss alone, as loud as the speech; prints how often each model writes words for it, and for
candidate rules the share of those it rejects and the share of real speech it would wrongly reject (and which). The
rule in force is telephony.guards.heard_noise. The scores are kept in var/bench/noise-<model>-...json;
--noise-scores judges the rules in force now on them again, without recognising.
--line-parts: WER and key-word recall on the clean line, with each part of the degraded line alone (noise, level,
lost frames, speaking rate: the same draw as the whole degraded line) and with all of them: what costs most.
--repair: the agency's words the recogniser nearly heard, put right (nlu/asr_context.py, AsrVocabulary.repair):
every dev and fresh-dev turn that holds a key word, plus the first dev turn of each intent (most hold none: repairs
where nothing was said count as false), by every caller voice on a clean and a degraded line; key-word recall, key
words written that were not said, and WER, as heard and repaired, per line. --cache keeps the transcripts (made once,
then read) so that repair rules can be compared on the same recognitions; --prompt recognises them with another
domain prompt than nlu/asr_context.yml's (give each prompt its own cache).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from foundation.settings import AsrSettings, Settings  # noqa: E402
from helpline.machine import cpu_name  # noqa: E402
from nlu.asr_context import AsrVocabulary  # noqa: E402
from nlu.caller_turns import DEV_TURNS, FRESH_DEV_TURNS, load_turns, sample  # noqa: E402
from telephony.guards import ECHO_CONFIDENCE_BELOW, echoes_prompt, heard_noise  # noqa: E402
from voice import line_conditions  # noqa: E402
from voice.asr import create_asr  # noqa: E402
from voice.asr.base import Transcript, Word  # noqa: E402
from voice.caller_voices import CALLER_VOICES  # noqa: E402
from voice.codecs import TELEPHONE_RATE  # noqa: E402
from voice.wer import normalize, wer  # noqa: E402

Scores = tuple[float, float, str]  # confidence, no_speech, text


def below(no_speech_at_least: float, confidence_below: float, c: float, n: float, text: str) -> bool:
    return n >= no_speech_at_least and c < confidence_below


def echo(prompt: str, n: int, c: float, _: float, text: str) -> bool:
    return c < ECHO_CONFIDENCE_BELOW and echoes_prompt(text, prompt, n)


def in_full(prompt: str, ns: float, conf: float, n: int, c: float, no_speech: float, text: str) -> bool:
    return heard_noise(text, c, no_speech, prompt, no_speech_at_least=ns, confidence_below=conf, echo_ngram=n)


def run_model(
    model: str, window_s: float, beam: int, compute: str, per_intent: int, noise: bool, no_speech: float
) -> None:
    settings = Settings(
        asr={
            "model": model,
            "window_s": window_s,
            "beam_size": beam,
            "compute_type": compute,
            "no_speech_threshold": no_speech,
        }
    )
    unsure_below = settings.turn_taking.confirm_below_confidence
    asr = create_asr(settings.asr)
    vocabulary = AsrVocabulary.load(settings.asr.language)
    context = vocabulary.context(None)
    turns = sample(load_turns(DEV_TURNS), per_intent)
    errors: dict[tuple[str, str], list[float]] = defaultdict(list)
    said_heard: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    unsure: dict[tuple[str, str], list[bool]] = defaultdict(list)
    cpu: list[float] = []
    speech: list[Scores] = []
    noise_scores: list[tuple[float, float, str, str]] = []
    for index, turn in enumerate(turns, 1):
        if index % 9 == 0:
            print(f"  {model}: {index}/{len(turns)} turns", flush=True)
        for voice in CALLER_VOICES.values():
            seed = line_conditions.seed_of(turn.id, voice.name)
            raw = voice.speak(turn.text)
            for condition in (line_conditions.CLEAN, line_conditions.degraded(seed)):
                started = time.process_time()
                t = asr.transcribe(line_conditions.apply(raw, condition, seed), TELEPHONE_RATE, context)
                cpu.append(time.process_time() - started)
                key = (voice.name, condition.name)
                errors[key].append(wer(turn.text, t.text))
                unsure[key].append(t.confidence < unsure_below)
                n_said, n_heard = vocabulary.key_words_kept(turn.text, t.text)
                said_heard[key][0] += n_said
                said_heard[key][1] += n_heard
                if not t.is_empty:
                    speech.append((t.confidence, t.no_speech, t.text))
            if noise:
                for kind in line_conditions.NOISES_ALONE:
                    t = asr.transcribe(line_conditions.noise_alone(kind, raw, seed), TELEPHONE_RATE, context)
                    noise_scores.append((t.confidence, t.no_speech, t.text, kind))
    cpu.sort()
    voices = len(CALLER_VOICES)
    print(
        f"\n== {model} {compute}, {window_s:g} s window, beam {beam}, no speech from {no_speech:g}: {len(turns)} dev"
        f" turns x {voices} voices x 2 lines ({cpu_name()})"
    )
    print(
        f"CPU per utterance: p50 {cpu[len(cpu) // 2]:.2f} s, p95 {cpu[int(len(cpu) * 0.95)]:.2f} s,"
        f" mean {sum(cpu) / len(cpu):.2f} s"
    )
    print(f"{'voice':12} {'line':9} {'WER':>6} {'key-word recall':>16} {f'unsure (< {unsure_below:g})':>15}")
    for key in sorted(errors, key=lambda k: (k[1], k[0])):  # clean lines first, then degraded; voices in order
        n_said, n_heard = said_heard[key]
        recall = n_heard / max(1, n_said)
        error, unsure_share = sum(errors[key]) / len(errors[key]), sum(unsure[key]) / len(unsure[key])
        print(f"{key[0]:12} {key[1]:9} {error:>6.3f} {recall:>16.3f} {unsure_share:>15.1%}")
    all_errors = [e for k in errors for e in errors[k]]
    all_unsure = [u for k in unsure for u in unsure[k]]
    total_said = sum(v[0] for v in said_heard.values())
    total_heard = sum(v[1] for v in said_heard.values())
    recall = total_heard / max(1, total_said)
    print(
        f"{'all':12} {'both':9} {sum(all_errors) / len(all_errors):>6.3f} {recall:>16.3f}"
        f" {sum(all_unsure) / len(all_unsure):>15.1%}"
    )
    if noise:
        report_noise(speech, noise_scores, context.prompt)
        threshold = "" if no_speech == AsrSettings().no_speech_threshold else f"-nospeech{no_speech:g}"
        saved = ROOT / "var" / "bench" / f"noise-{model}-{compute}-{window_s:g}s-beam{beam}{threshold}.json"
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps({"prompt": context.prompt, "speech": speech, "noise": noise_scores}))
        print(f"scores kept in {saved.relative_to(ROOT)} (to try other rules on the same recognitions)")


def report_noise(speech: list[Scores], noise_scores: list[tuple[float, float, str, str]], prompt: str) -> None:
    worded = [s for s in noise_scores if s[2].strip()]
    print(f"noise clips: {len(noise_scores)}, came out as words: {len(worded)} "
          f"({len(worded) / max(1, len(noise_scores)):.1%}); speech clips with words: {len(speech)}")  # fmt: skip
    print(f"{'rule':56} {'noise-words rejected':>21} {'speech rejected':>16}")
    rules: dict[str, Callable[[float, float, str], bool]] = {
        "in force (telephony.guards.heard_noise)": lambda c, n, text: heard_noise(text, c, n, prompt)
    }
    for n in (2, 3):
        rules[f"echo of the prompt ({n}-word runs), confidence < {ECHO_CONFIDENCE_BELOW}"] = functools.partial(
            echo, prompt, n
        )
    for ns, conf, n in ((0.4, 0.5, 3), (0.4, 0.5, 2), (0.5, 0.4, 2)):
        rules[f"stricter: no_speech >= {ns} & conf < {conf}, {n}-word echo"] = functools.partial(
            in_full, prompt, ns, conf, n
        )
    for ns in (0.3, 0.4, 0.5, 0.6):
        for conf in (0.4, 0.5, 0.6):
            rules[f"no_speech >= {ns} and confidence < {conf}"] = functools.partial(below, ns, conf)
    wrongly_rejected: dict[str, list[str]] = {}
    for name, rule in rules.items():
        caught = sum(rule(c, n, text) for c, n, text, _ in worded)
        wrongly_rejected[name] = [
            f"conf {c:.2f} no_speech {n:.2f} {text[:70]!r}" for c, n, text in speech if rule(c, n, text)
        ]
        share = len(wrongly_rejected[name]) / max(1, len(speech))
        print(f"{name:56} {caught / max(1, len(worded)):>21.1%} {share:>16.1%}")
    for name, texts in wrongly_rejected.items():
        if name.startswith("stricter"):
            print(f"speech rejected by {name}:", *(f"  {t}" for t in texts), sep="\n")
    print("noise that came out as words, and whether the rule in force rejects it:")
    for c, n, text, kind in worded:
        verdict = "rejected" if heard_noise(text, c, n, prompt) else "KEPT    "
        print(f"  {kind:7} conf {c:.2f} no_speech {n:.2f} {verdict} {' '.join(normalize(text))[:80]!r}")
    kept = [(c, n, text) for c, n, text in speech if heard_noise(text, c, n, prompt)]
    print(f"speech the rule in force rejects: {len(kept)}")
    for c, n, text in kept:
        print(f"  conf {c:.2f} no_speech {n:.2f} {text[:80]!r}")


def line_parts(per_intent: int) -> None:
    """Which part of a degraded line costs the recogniser most: each turn and voice on the clean line, with one part
    of its degraded line at a time (the same draw), and with all of them."""
    settings = Settings()
    asr = create_asr(settings.asr)
    vocabulary = AsrVocabulary.load(settings.asr.language)
    context = vocabulary.context(None)
    turns = sample(load_turns(DEV_TURNS), per_intent)
    clean = line_conditions.CLEAN
    scores: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0, 0])  # WER sum, utterances, said, heard
    for index, turn in enumerate(turns, 1):
        if index % 9 == 0:
            print(f"  {index}/{len(turns)} turns", flush=True)
        for voice in CALLER_VOICES.values():
            seed = line_conditions.seed_of(turn.id, voice.name)
            line = line_conditions.degraded(seed)
            parts = {  # name: (speaking rate, line)
                "clean": (1.0, clean),
                "noise": (1.0, dataclasses.replace(clean, snr_db=line.snr_db, noise=line.noise)),
                "level": (1.0, dataclasses.replace(clean, level_db=line.level_db)),
                "lost frames": (1.0, dataclasses.replace(clean, frame_loss=line.frame_loss)),
                "rate": (line.rate, clean),
                "all": (line.rate, line),
            }
            spoken: dict[float, np.ndarray] = {}
            for name, (rate, condition) in parts.items():
                if rate not in spoken:
                    spoken[rate] = voice.speak(turn.text, rate)
                heard = asr.transcribe(line_conditions.apply(spoken[rate], condition, seed), TELEPHONE_RATE, context)
                n_said, n_heard = vocabulary.key_words_kept(turn.text, heard.text)
                score = scores[name]
                score[0] += wer(turn.text, heard.text)
                score[1] += 1
                score[2] += n_said
                score[3] += n_heard
    print(f"\n== line parts: {len(turns)} dev turns x {len(CALLER_VOICES)} voices, tiny.en ({cpu_name()})")
    print(f"{'line':14} {'WER':>6} {'key-word recall':>16} {'key words said':>15}")
    for name, (errors, n, n_said, n_heard) in scores.items():
        print(f"{name:14} {errors / n:>6.3f} {n_heard / max(1, n_said):>16.3f} {n_said:>15.0f}")


def key_word_transcripts(vocabulary: AsrVocabulary, cache: Path | None) -> list[dict[str, Any]]:
    """The repair bench's utterances, recognised as the line does it (or read from ``cache``, written when absent)."""
    if cache is not None and cache.exists():
        return [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line.strip()]
    dev = load_turns(DEV_TURNS)
    chosen = {t.id: t for t in sample(dev, 1)}
    chosen |= {t.id: t for t in [*dev, *load_turns(FRESH_DEV_TURNS)] if vocabulary.key_words_in(t.text)}
    settings = Settings()
    asr = create_asr(settings.asr)
    context = vocabulary.context(None)
    rows: list[dict[str, Any]] = []
    for index, turn in enumerate(chosen.values(), 1):
        if index % 20 == 0:
            print(f"  {index}/{len(chosen)} turns", flush=True)
        for voice in CALLER_VOICES.values():
            seed = line_conditions.seed_of(turn.id, voice.name)
            for line in (line_conditions.CLEAN, line_conditions.degraded(seed)):
                audio = line_conditions.apply(voice.speak(turn.text, line.rate), line, seed)
                heard = asr.transcribe(audio, TELEPHONE_RATE, context)
                rows.append({
                    "turn": turn.id, "voice": voice.name, "line": line.name, "said": turn.text, "heard": heard.text,
                    "confidence": heard.confidence, "words": [[w.text, w.confidence] for w in heard.words],
                    "prompt": context.prompt,
                })  # fmt: skip
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return rows


def repair_bench(cache: Path | None, prompt: str | None) -> None:
    """Key-word recall, key words written though not said, and WER: as heard, and with the agency's words repaired."""
    vocabulary = AsrVocabulary.load(Settings().asr.language)
    if prompt is not None:
        vocabulary = dataclasses.replace(vocabulary, prompt=prompt)
    rows = key_word_transcripts(vocabulary, cache)
    # line: [said, kept as heard, kept repaired, false as heard, false repaired, WER heard, WER repaired, n]
    scores: dict[str, list[float]] = defaultdict(lambda: [0.0] * 8)
    changes: list[tuple[str, str, str]] = []
    for row in rows:
        said = str(row["said"])
        words = tuple(Word(str(t), float(c)) for t, c in row["words"])
        heard = Transcript(str(row["heard"]), float(row["confidence"]), "en", audio_s=0.0, words=words)
        repaired, _ = vocabulary.repair(heard)
        wanted = vocabulary.key_words_in(said)
        for key in (str(row["line"]), "all"):
            score = scores[key]
            score[0] += len(wanted)
            for offset, text in ((1, heard.text), (2, repaired.text)):
                _, n_kept = vocabulary.key_words_kept(said, text)
                score[offset] += n_kept
                score[offset + 2] += len([w for w in vocabulary.key_words_in(text) if w not in wanted])
                score[offset + 4] += wer(said, text)
            score[7] += 1
        if repaired.text != heard.text:
            changes.append((said, heard.text, repaired.text))
    print(f"\n== key-word repair: {len(rows)} utterances ({len({r['turn'] for r in rows})} dev turns x "
          f"{len(CALLER_VOICES)} voices x 2 lines), tiny.en ({cpu_name()})")  # fmt: skip
    print(f"recognised with the prompt {rows[0].get('prompt', '(not recorded)')!r}")
    print(f"{'line':9} {'key words said':>14} {'recall heard':>13} {'repaired':>9} {'false heard':>12} "
          f"{'repaired':>9} {'WER heard':>10} {'repaired':>9}")  # fmt: skip
    for key, (n_said, kept, kept_r, false, false_r, err, err_r, n) in sorted(scores.items()):
        print(f"{key:9} {n_said:>14.0f} {kept / max(1, n_said):>13.3f} {kept_r / max(1, n_said):>9.3f} "
              f"{false:>12.0f} {false_r:>9.0f} {err / n:>10.3f} {err_r / n:>9.3f}")  # fmt: skip
    print(f"transcripts changed: {len(changes)}")
    for said, before, after in changes:
        print(f"  said {said[:60]!r}\n    heard {before[:70]!r}\n    -> {after[:70]!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="tiny.en", help="comma-separated: tiny.en, base")
    parser.add_argument("--windows", default="30", help="encoder windows in seconds, comma-separated (10-30)")
    parser.add_argument("--beams", default="1", help="beam sizes, comma-separated (1: greedy, the default)")
    parser.add_argument(
        "--compute-types", default="int8", help="CTranslate2 compute types, comma-separated: int8, float32"
    )
    parser.add_argument(
        "--no-speech-thresholds",
        default=str(AsrSettings().no_speech_threshold),
        help="ASR__NO_SPEECH_THRESHOLD values, comma-separated (default: the line's)",
    )
    parser.add_argument("--per-intent", type=int, default=1)
    parser.add_argument("--no-noise", action="store_true", help="speech only")
    parser.add_argument(
        "--line-parts", action="store_true", help="instead: WER with each part of the degraded line alone (tiny.en)"
    )
    parser.add_argument("--repair", action="store_true", help="instead: key-word repair on dev turns with key words")
    parser.add_argument(
        "--noise-scores",
        type=Path,
        help="instead: the noise guard's rules on scores an earlier run kept (no recognition)",
    )
    parser.add_argument("--cache", type=Path, help="--repair: transcripts file (read if present, else written)")
    parser.add_argument("--prompt", help="--repair: the domain prompt to recognise with (default: nlu/asr_context.yml)")
    args = parser.parse_args()
    if args.noise_scores:
        kept = json.loads(args.noise_scores.read_text())
        speech = [(c, n, text) for c, n, text in kept["speech"]]
        noise = [(c, n, text, kind) for c, n, text, kind in kept["noise"]]
        report_noise(speech, noise, kept["prompt"])
        return 0
    if args.repair:
        repair_bench(args.cache, args.prompt)
        return 0
    if args.line_parts:
        line_parts(args.per_intent)
        return 0
    for model in args.models.split(","):
        for window in args.windows.split(","):
            for beam in args.beams.split(","):
                for compute in args.compute_types.split(","):
                    for no_speech in args.no_speech_thresholds.split(","):
                        run_model(
                            model.strip(),
                            float(window),
                            int(beam),
                            compute.strip(),
                            args.per_intent,
                            not args.no_noise,
                            float(no_speech),
                        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
