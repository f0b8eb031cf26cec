"""Whether a recording keeps a caller's numbers: personal data silenced by word timestamps (telephony/recording.py).

    .venv/bin/python bench/recording.py [--voices flite-slt,espeak-us] [--lines clean,degraded]

Each sentence below (a dev set, written for this bench: the rules and margins were tuned on it) is spoken by every
simulated caller voice and the assistant's Piper voice, on a clean line and on a degraded one
(voice/line_conditions.py), and recognised as the line does it. The audio the recording would silence is silenced,
and the result is recognised again. Per voice and line it prints: heard (the first recognition wrote the number as
four digits or more, or masked it, so the line could find it), silenced (utterances with a passage silenced), leaked
(the silenced audio still yields a digit when recognised again: a digit a listener could hear, or one the recogniser
invents for the silence; a person may hear more than a recogniser writes), of those how many the line had heard (a
failure of the silencing; the others are numbers the recogniser did not write, so nothing could be found), and, of
the sentence's other words the first recognition heard, the share still heard after silencing (what silencing costs
a supervisor). ``--show`` prints each leak's transcripts.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from foundation.settings import AsrSettings  # noqa: E402
from helpline.machine import cpu_name  # noqa: E402
from telephony.recording import personal_audio  # noqa: E402
from voice import line_conditions  # noqa: E402
from voice.asr import create_asr  # noqa: E402
from voice.caller_voices import CALLER_VOICES  # noqa: E402
from voice.codecs import TELEPHONE_RATE  # noqa: E402
from voice.wer import normalize  # noqa: E402

SENTENCES = [
    "My personal number is 19811218-9876. When is my parental benefit paid?",
    "Hello, my account number is 8327-9, 123 456 789-0 and I want to change it.",
    "You can call me back on 070-123 45 67 after lunch.",
    "It's about my daughter, her personal number is 20121212-1212, she needs a new card.",
    "My card number is 4111 1111 1111 1111 and the payment was taken twice.",
    "I sent the form yesterday, my number is 8112189876, can you check it arrived?",
]


class PiperCaller:
    """The assistant's own Piper voice as a caller (the other voices are voice/caller_voices.py)."""

    name = "piper"

    def __init__(self) -> None:
        from voice.caller_voices import piper_caller

        self._tts = piper_caller()

    def speak(self, text: str, rate: float = 1.0) -> np.ndarray:
        return self._tts.synthesize(text).samples_at(TELEPHONE_RATE)


def other_words(sentence: str) -> list[str]:
    """The sentence's words but its numbers (normalize would spell those out as words)."""
    return normalize(re.sub(r"\S*\d\S*", " ", sentence))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", default=",".join(["piper", *CALLER_VOICES]))
    parser.add_argument("--lines", default="clean,degraded")
    parser.add_argument("--show", action="store_true", help="print the transcripts of each leak")
    args = parser.parse_args()
    asr = create_asr(AsrSettings())
    voices = {name: PiperCaller() if name == "piper" else CALLER_VOICES[name] for name in args.voices.split(",")}
    print(f"# {cpu_name()}; {len(SENTENCES)} sentences (dev) x {len(voices)} voices x lines {args.lines}")
    print(f"{'voice':<12} {'line':<9} {'heard':>6} {'silenced':>9} {'leaked':>7} {'of them heard':>14} "
          f"{'other words kept':>17}")  # fmt: skip
    totals = np.zeros(5)
    for name, voice in voices.items():
        for line in args.lines.split(","):
            heard = silenced = leaked = leaked_heard = 0
            kept: list[float] = []
            for sentence in SENTENCES:
                seed = line_conditions.seed_of(name, line, sentence)
                condition = line_conditions.CLEAN if line == "clean" else line_conditions.degraded(seed)
                audio = line_conditions.apply(voice.speak(sentence, condition.rate), condition, seed)
                transcript = asr.transcribe(audio, TELEPHONE_RATE)
                passages = personal_audio(transcript, (0, len(audio) * 1000 // TELEPHONE_RATE))
                number_heard = sum(c.isdigit() for c in transcript.text) >= 4 or "[" in transcript.text
                heard += number_heard
                silenced += bool(passages)
                quiet = audio.copy()
                for start_ms, end_ms in passages:
                    quiet[max(0, start_ms) * TELEPHONE_RATE // 1000 : end_ms * TELEPHONE_RATE // 1000] = 0.0
                again = asr.transcribe(quiet, TELEPHONE_RATE).text
                leak = bool(re.search(r"\d", again))
                leaked += leak
                leaked_heard += leak and number_heard
                if leak and args.show:
                    print(f"    leak: {transcript.text!r} -> silenced {passages} -> {again!r}")
                before = set(normalize(transcript.text))
                wanted = [w for w in other_words(sentence) if w in before]  # heard before silencing
                left = set(normalize(again))
                kept.append(sum(w in left for w in wanted) / max(1, len(wanted)))
            n = len(SENTENCES)
            totals += (heard, silenced, leaked, leaked_heard, n)
            counts = f"{heard:>3}/{n:<2} {silenced:>6}/{n:<2} {leaked:>4}/{n:<2} {leaked_heard:>14}"
            print(f"{name:<12} {line:<9} {counts} {np.mean(kept):>17.2f}")
    heard, silenced, leaked, leaked_heard, n = totals
    print(
        f"all: heard {heard:.0f}/{n:.0f}, silenced {silenced:.0f}, leaked {leaked:.0f} ({leaked / n:.1%}), "
        f"of them heard {leaked_heard:.0f} ({leaked_heard / max(1, heard):.1%} of the numbers heard)"
    )


if __name__ == "__main__":
    main()
