"""End of turn: how soon the line knows a caller has finished, and how often it cuts a caller off mid-sentence.

    .venv/bin/python bench/turns.py [--voices 6] [--end-silence-ms 700] [--unfinished-wait-ms 1200]
        [--settings silence,words,smart_turn,smart_turn+words,smart_turn+silero] [--threshold 0.5] [--pause-ms 200]
        [--silero-threshold 0.5] [--noise-gate-db 9] [--noise-end-ms 1500] [--caller-range-db 10] [--show-cut-offs]
        [--decide-after-ms 0] [--reply-ms 80] [--take-back-heard-ms 400]

Each caller utterance goes through the gateway's own endpointing parts frame by frame (voice/vad.py Endpointer with
the chosen speech detector; at each short pause the end-of-turn model, as telephony/listening.py asks it):
- PAUSED utterances: a request said in two parts with a pause of 0.5-1.2 s between them, after a function word, an
  "um"/"er", or inside a list ("how do I apply for ... parental benefit"). Cut off = the turn was ended in the pause.
- WHOLE utterances: the same requests said in one go. End delay = from the caller's last voiced frame to the moment
  the turn is declared over (what endpointing adds to the gap the caller feels; the model's own time included).
- CPU ms per end-of-turn decision (process CPU time around the model call, one thread).
Settings: ``silence`` (the fixed end silence), ``words`` (the same, and an utterance whose words stop mid-sentence,
recognised by the line's own recogniser and biasing, waits for the rest as telephony/listening.py does: released
after --unfinished-wait-ms from the caller's last word unless they go on), ``smart_turn``, and combinations joined
by "+": ``smart_turn+words`` is the model with the unfinished-words wait (as the gateway runs it), ``+silero`` the
Silero speech detector instead of WebRTC VAD, ``+went_on`` (with ``words``) the line's rule that speech heard
starting within the words wait and before the words are decided holds them: the line decides an utterance's words
when their recognition is done, which here is the speculation's start (--speculate-after-ms of silence; with
smart_turn, its --pause-ms) plus the recognition's own wall time on this machine, one at a time (a busy line decides
later and holds more), and no sooner than --decide-after-ms after the caller's last word
(HELPLINE_TURN_TAKING__DECIDE_AFTER_MS; not with ``smart_turn``, whose model judges the turn), ``+take_back``
(with ``went_on``) the reply to words decided is taken back when the caller's voice comes back within the words wait
and no later than --reply-ms (the decision to the reply's first audio) plus --take-back-heard-ms (what of it they
may have heard) after the decision (``+decide700``, ``+heard400``: a setting's own values of those two), ``+gate`` the
noise floor's rules (voice/vad.py Endpointer: a voice --noise-gate-db over the line's noise floor starts an
utterance, and --noise-end-ms without it ends one), ``+caller`` (with ``gate``) only a voice within
--caller-range-db of the caller's own level holds an utterance open (voice/vad.py CallerLevel).
Callers: Piper (the caller voice of the tests) and the flite/espeak-ng caller voices, each over the G.711 line, and
also degraded like a real line (noise 10-20 dB SNR, level, rate, lost frames). Each utterance comes after 1 s of the
line without speech (the caller was listening to the assistant) and is followed by 3 s of it.
The felt gap through the whole stack (end of speech -> first reply audio) at 1 and 15 calls: bench/voice.py latency
and capacity, with HELPLINE_END_OF_TURN__ENGINE (README "End of turn").
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder (which holds bench/voice.py) comes first on sys.path: drop it, so that
# `import voice` finds the product's package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from foundation.settings import AsrSettings, EndOfTurnSettings, Settings, VadSettings, smart_turn_model_path
from helpline.machine import cpu_name
from nlu.asr_context import AsrVocabulary
from telephony.softphone import CallerAudio
from telephony.turn_policy import sounds_unfinished
from voice.asr import AsrEngine, create_asr
from voice.asr.base import RecognitionContext
from voice.caller_voices import CALLER_VOICES
from voice.codecs import FRAME_MS, TELEPHONE_RATE, float_to_pcm16, pcm16_to_float, resample, telephone_round_trip
from voice.end_of_turn import EndOfTurn, create_end_of_turn
from voice.line_conditions import apply, degraded, seed_of
from voice.silero import SileroModel
from voice.vad import Endpointer, SpeechPaused, SpeechStarted, UtteranceEnded

# (first part, rest): the pause goes between them.
REQUESTS = [
    ("how do I apply for", "parental benefit"),
    ("I would like to", "speak to a real person"),
    ("my sickness benefit was", "stopped last month"),
    ("I got a letter about my", "housing allowance and I don't understand it"),
    ("when do you pay the", "child allowance"),
    ("I want to appeal the decision on my", "pension"),
    ("um I'm calling about", "my unemployment benefit"),
    ("the e-ID login on your website", "keeps failing"),
    ("I need to report a new", "bank account"),
    ("er what are", "your opening hours"),
    ("I sent you my payslip, my rental contract, and", "my bank statement"),
    ("can you tell me how long", "a decision takes"),
]
PAUSES_S = (0.5, 0.8, 1.2)
LEAD_MS = 1000  # the line before the caller speaks (they were listening to the assistant)
FRAME = TELEPHONE_RATE * FRAME_MS // 1000


@dataclass
class Words:
    """The unfinished-words rule: the line's recogniser (with its domain biasing) and the language's endings."""

    asr: AsrEngine
    context: RecognitionContext | None
    endings: tuple[str, ...]
    wait_ms: int
    # Audio heard before, in this run: settings that end an utterance at the same frame are compared on the same
    # words and recognition time, measured once (its time varies from one recognition to the next).
    _heard: dict[bytes, tuple[str, bool, int]] = field(default_factory=dict)

    def hear(self, pcm: np.ndarray) -> tuple[str, bool, int]:
        """The utterance's words, whether they stop mid-sentence, and the recognition's wall time in ms."""
        known = self._heard.get(pcm.tobytes())
        if known is not None:
            return known
        t0 = time.perf_counter()
        heard = self.asr.transcribe(pcm16_to_float(pcm), TELEPHONE_RATE, self.context)
        last = heard.words[-1].confidence if heard.words else 1.0
        wall_ms = round((time.perf_counter() - t0) * 1000)
        self._heard[pcm.tobytes()] = result = heard.text, sounds_unfinished(heard.text, self.endings, last), wall_ms
        return result


@dataclass
class Setting:
    name: str
    end_silence_ms: int
    pause_ms: int
    model: EndOfTurn | None
    threshold: float
    silero: SileroModel | None
    words: Words | None = None
    silero_threshold: float = VadSettings().silero_threshold
    went_on: bool = False  # speech that starts before the words are decided holds them (telephony/listening.py)
    speculate_after_ms: int = VadSettings().speculate_after_ms
    decide_after_ms: int = 0  # went_on, silence rule: words not decided sooner after the last word (stream time)
    noise_gate_db: float = 0.0  # 0: the detector alone decides (voice/vad.py NoiseFloor)
    noise_end_ms: int = VadSettings().noise_end_ms
    caller_range_db: float = 0.0  # 0: every voice over the floor holds an utterance (voice/vad.py CallerLevel)
    # take_back: a reply decided is taken back when the caller's voice comes back (within the words wait) before it
    # has played this long: the reply's own time (--reply-ms) and what of it the caller may have heard. None: off.
    take_back_ms: int | None = None


@dataclass
class Outcome:
    ends_ms: list[int]  # stream times the turn was declared over
    decisions_cpu_ms: list[float]
    heard: list[str]  # with the words rule: the words of each utterance, as the turn's end was decided on them
    recognition_ms: list[int]  # each recognition's wall time
    decided_at_ms: list[int]  # with went_on: stream times the line decides words (what the reply waits for)
    taken_back_ms: list[int]  # with take_back: how long after the decision the caller's voice came back and undid it


def run(setting: Setting, pcm: np.ndarray) -> Outcome:
    """The utterance through the endpointer frame by frame, the model asked at each pause."""
    vad = VadSettings()
    detector = setting.silero.detector(setting.silero_threshold) if setting.silero is not None else None
    endpointer = Endpointer(
        vad.aggressiveness, setting.end_silence_ms, vad.min_speech_ms, vad.max_utterance_s, setting.pause_ms, detector,
        setting.noise_gate_db, setting.noise_end_ms, setting.caller_range_db,
    )  # fmt: skip
    ends: list[int] = []
    cpu: list[float] = []
    release_at: int | None = None  # held unfinished words become the turn then
    held: list[np.ndarray] = []  # their audio: the model hears the turn so far, as the gateway's Listener does
    heard: list[str] = []
    recognition_ms: list[int] = []
    decided_at_ms: list[int] = []
    taken_back_ms: list[int] = []
    # With went_on: words not yet decided for good (stream time the line decides them, or with take_back the last
    # moment their reply can be taken back; the turn's end; the latest onset of the caller's voice that still holds
    # them; their audio; when they were decided).
    deciding: tuple[int, int, int, np.ndarray, int] | None = None

    def settle(onset_ms: int | None, release: int | None) -> None:
        """The line decides the words under way: the caller's voice back within the words wait (from ``onset_ms``)
        holds them, to be released at ``release`` unless speech joins them; otherwise the turn ended at its end."""
        nonlocal deciding, release_at
        assert deciding is not None
        _, end_ms, hold_until_ms, pcm_so_far, decided_at = deciding
        if onset_ms is not None and onset_ms <= hold_until_ms:
            held.append(pcm_so_far)
            release_at = release
            if onset_ms > decided_at:  # the reply was under way: taken back
                taken_back_ms.append(onset_ms - decided_at)
        else:
            ends.append(end_ms)
            held.clear()
        deciding = None

    def utterance_over(utterance: UtteranceEnded, end_ms: int) -> None:
        """The turn ends at ``end_ms``, unless the utterance's words stop mid-sentence: then they are held. With
        went_on, the line decides them when their recognition is done (started at the pause that became the end,
        as the gateway speculates), and speech heard starting before then holds them too."""
        nonlocal release_at, deciding
        unfinished = False
        if setting.words is not None:
            text, unfinished, wall_ms = setting.words.hear(utterance.pcm)
            heard.append(text)
            recognition_ms.append(wall_ms)
        if unfinished and setting.words is not None:
            release_at = utterance.speech_end_ms + setting.words.wait_ms
            held.append(utterance.pcm)
        elif setting.went_on and setting.words is not None:
            recognised = utterance.speech_end_ms + setting.speculate_after_ms + wall_ms
            floor = setting.decide_after_ms if setting.model is None else 0  # the silence rule's, as in the gateway
            decided_at = max(end_ms, recognised, utterance.speech_end_ms + floor)
            decided_at_ms.append(decided_at)
            last_chance = decided_at + (setting.take_back_ms or 0)
            deciding = (last_chance, end_ms, utterance.speech_end_ms + setting.words.wait_ms, utterance.pcm, decided_at)
        else:
            ends.append(end_ms)
            held.clear()

    for i in range(0, len(pcm) - FRAME + 1, FRAME):
        at_ms = i // FRAME * FRAME_MS
        if deciding is not None and at_ms >= deciding[0]:  # recognised
            settle(endpointer.starting_at_ms(), release=at_ms)  # voice that may yet be speech: held until it passes
        for event in endpointer.feed(pcm[i : i + FRAME], at_ms=at_ms):
            if isinstance(event, SpeechStarted):
                release_at = None  # the caller goes on: what was held joins this utterance
                if deciding is not None:
                    settle(event.at_ms, release=None)
            elif isinstance(event, UtteranceEnded):
                utterance_over(event, at_ms + FRAME_MS)
            elif isinstance(event, SpeechPaused) and setting.model is not None:
                t0, w0 = time.process_time(), time.perf_counter()
                probability = setting.model.complete(np.concatenate([*held, event.pcm]))
                cpu.append((time.process_time() - t0) * 1000)
                model_ms = round((time.perf_counter() - w0) * 1000)  # the words' recognition is the turn's own
                ended = endpointer.end_now() if probability >= setting.threshold else None
                if ended is not None:
                    utterance_over(ended, at_ms + FRAME_MS + model_ms)
        held_over = release_at is not None and at_ms >= release_at
        if held_over and not endpointer.in_speech and not endpointer.starting:
            ends.append(at_ms + FRAME_MS)
            release_at = None
            held.clear()
    if deciding is not None:  # recognised after the audio ran out, nobody having gone on: over at its endpoint, as
        settle(None, release=None)  # every other setting counts it (whatever the recognition's time)
    return Outcome(ends, cpu, heard, recognition_ms, decided_at_ms, taken_back_ms)


def last_voiced_ms(audio: np.ndarray) -> int:
    """Stream time just after the last voiced frame of clean synthesised speech (the softphone's rule: the last 20 ms
    frame within 30 dB of the loudest)."""
    return (CallerAudio.from_audio(audio).last_voiced + 1) * FRAME_MS


def callers(count: int) -> list[tuple[str, object]]:
    from voice.caller_voices import piper_caller

    piper = piper_caller()

    class Piper:
        name = "piper-caller"

        def speak(self, text: str, rate: float = 1.0) -> np.ndarray:
            return piper.synthesize(text).samples_at(TELEPHONE_RATE)

    return [("piper-caller", Piper()), *list(CALLER_VOICES.items())][:count]


@dataclass
class Utterance:
    pcm: np.ndarray  # int16 audio on the line
    end_ms: int  # stream time just after the caller's last word
    voice: str
    line: str  # clean or degraded
    text: str  # what the caller says, "..." where the pause is


def letters(text: str) -> int:
    return sum(c.isalnum() for c in text)


def pause_at_s(aligner: object, audio: np.ndarray, first: str) -> float:
    """Where the pause goes after ``first``, the first part of what ``audio`` says: in the quietest 10 ms from 150 ms
    before to 30 ms after where its last word ends or the next begins, whichever is sooner (faster-whisper's word
    times are only roughly right, and late more often than early), so the first part keeps the intonation of a
    sentence that goes on and holds no sound of the next word. The words are counted by their letters: "payslip"
    may come back as "pay slip"."""
    segments, _ = aligner.transcribe(  # type: ignore[attr-defined]
        resample(audio, TELEPHONE_RATE, 16000), word_timestamps=True, language="en", beam_size=1
    )
    found = [w for segment in segments for w in (segment.words or [])]
    if not found:
        return len(audio) / TELEPHONE_RATE / 2
    wanted, seen, k = letters(first), 0, 0
    while k < len(found) - 1 and seen + letters(found[k].word) < wanted:
        seen += letters(found[k].word)
        k += 1
    end = float(found[k].end)
    start_next = float(found[k + 1].start) if k + 1 < len(found) else end
    step = TELEPHONE_RATE // 100
    boundary = min(end, start_next)
    lo = max(0, int((boundary - 0.15) * TELEPHONE_RATE))
    hi = min(len(audio) - step, int((boundary + 0.03) * TELEPHONE_RATE))
    if hi <= lo:
        return end
    energy = [float(np.mean(audio[i : i + step] ** 2)) for i in range(lo, hi, step)]
    return (lo + int(np.argmin(energy)) * step + step // 2) / TELEPHONE_RATE


def utterances(voices: list[tuple[str, object]]) -> tuple[list[Utterance], list[Utterance]]:
    """Paused and whole utterances, on a clean G.711 line and on a degraded one, each after 1 s and followed by 3 s of
    the line without speech. A paused one is the whole utterance with silence inserted after its first part
    (pause_at_s)."""
    from faster_whisper import WhisperModel

    from voice.asr.packaged_models import packaged_tiny_en

    aligner = WhisperModel(str(packaged_tiny_en()), device="cpu", compute_type="int8")
    paused, whole = [], []
    tail = np.zeros(TELEPHONE_RATE * 3, dtype=np.float32)
    lead = np.zeros(TELEPHONE_RATE * LEAD_MS // 1000, dtype=np.float32)
    for v, (name, voice) in enumerate(voices):
        for r, (first, rest) in enumerate(REQUESTS):
            gap = np.zeros(int(PAUSES_S[(v + r) % len(PAUSES_S)] * TELEPHONE_RATE), dtype=np.float32)
            for line in ("clean", "degraded"):
                seed = seed_of(name, first, line)
                condition = degraded(seed) if line == "degraded" else None
                rate = condition.rate if condition is not None else 1.0
                speech = voice.speak(f"{first} {rest}", rate)  # type: ignore[attr-defined]
                cut = int(pause_at_s(aligner, speech, first) * TELEPHONE_RATE)

                def on_line(audio: np.ndarray, condition=condition, seed=seed) -> np.ndarray:  # type: ignore[no-untyped-def]
                    if condition is None:
                        return float_to_pcm16(telephone_round_trip(audio, TELEPHONE_RATE))
                    return float_to_pcm16(apply(audio, condition, seed))

                end_ms = LEAD_MS + last_voiced_ms(speech)
                paused.append(Utterance(on_line(np.concatenate([lead, speech[:cut], gap, speech[cut:], tail])),
                                        end_ms + len(gap) * 1000 // TELEPHONE_RATE, name, line,
                                        f"{first} ... {rest}"))  # fmt: skip
                whole.append(Utterance(on_line(np.concatenate([lead, speech, tail])), end_ms, name, line,
                                       f"{first} {rest}"))  # fmt: skip
    return paused, whole


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voices", type=int, default=6, help="Piper caller + up to 5 flite/espeak-ng voices")
    parser.add_argument("--settings", default="silence,words,smart_turn,smart_turn+words,smart_turn+silero")
    parser.add_argument("--end-silence-ms", type=int, default=VadSettings().end_silence_ms, help="silence and words")
    parser.add_argument("--silero-threshold", type=float, default=VadSettings().silero_threshold)
    parser.add_argument("--unfinished-wait-ms", type=int, default=Settings().turn_taking.unfinished_wait_ms)
    parser.add_argument("--threshold", type=float, default=EndOfTurnSettings().threshold)
    parser.add_argument("--pause-ms", type=int, default=EndOfTurnSettings().pause_ms)
    parser.add_argument("--max-silence-ms", type=int, default=EndOfTurnSettings().max_silence_ms)
    parser.add_argument("--speculate-after-ms", type=int, default=VadSettings().speculate_after_ms,
                        help="went_on, silence rule (smart_turn recognises at its --pause-ms)")  # fmt: skip
    parser.add_argument("--decide-after-ms", type=int, default=Settings().turn_taking.decide_after_ms, help="went_on")
    parser.add_argument("--noise-gate-db", type=float, default=VadSettings().noise_gate_db, help="gate")
    parser.add_argument("--noise-end-ms", type=int, default=VadSettings().noise_end_ms, help="gate")
    parser.add_argument("--caller-range-db", type=float, default=VadSettings().caller_range_db, help="caller")
    # The stack's median at one call, 2026-12-07 (bench/voice.py latency --rows: the turns' response_ms, 76 ms).
    parser.add_argument("--reply-ms", type=int, default=80, help="take_back: from the decision to the reply's audio")
    parser.add_argument("--take-back-heard-ms", type=int, default=Settings().turn_taking.take_back_heard_ms,
                        help="take_back")  # fmt: skip
    parser.add_argument("--show-cut-offs", action="store_true", help="list each utterance cut off, and its words")
    args = parser.parse_args()
    settings = Settings()
    model = None
    silero = None
    chosen: list[Setting] = []
    words = None
    for name in args.settings.split(","):
        # decide<N> and heard<N>: this setting's --decide-after-ms and --take-back-heard-ms
        own = [m for m in map(re.compile(r"(decide|heard)(\d+)").fullmatch, name.split("+")) if m]
        numbers = {m[1]: int(m[2]) for m in own}
        parts = set(name.split("+")) - {m[0] for m in own}
        unknown = parts - {"silence", "words", "smart_turn", "silero", "went_on", "gate", "caller", "take_back"}
        if unknown:
            parser.error(f"unknown setting part(s) {', '.join(sorted(unknown))} in {name!r}")
        if "words" in parts and words is None:
            vocabulary = AsrVocabulary.load(settings.asr.language)
            # One recognition at a time, as the line runs a lone caller's (ASR__CPU_THREADS_ALONE).
            alone = replace(vocabulary.context(), alone=True)
            words = Words(create_asr(AsrSettings()), alone, settings.spoken.unfinished_endings,
                          args.unfinished_wait_ms)  # fmt: skip
        semantic = "smart_turn" in parts
        if semantic and model is None:
            model = create_end_of_turn(
                EndOfTurnSettings(engine="smart_turn", model_path=smart_turn_model_path(settings.models_dir))
            )
        if "silero" in parts and silero is None:
            silero = SileroModel()
        chosen.append(
            Setting(
                name,
                args.max_silence_ms if semantic else args.end_silence_ms,
                args.pause_ms if semantic else 0,
                model if semantic else None,
                args.threshold,
                silero if "silero" in parts else None,
                words if "words" in parts else None,
                args.silero_threshold,
                "went_on" in parts,
                args.pause_ms if semantic else args.speculate_after_ms,  # the gateway recognises at the model's pause
                numbers.get("decide", args.decide_after_ms),
                args.noise_gate_db if "gate" in parts else 0.0,
                args.noise_end_ms,
                args.caller_range_db if "caller" in parts else 0.0,
                args.reply_ms + numbers.get("heard", args.take_back_heard_ms) if "take_back" in parts else None,
            )
        )
    print(f"CPU: {cpu_name()}; threshold {args.threshold}, pause {args.pause_ms} ms, longest wait "
          f"{args.max_silence_ms} ms (silence and words: {args.end_silence_ms} ms; unfinished words wait "
          f"{args.unfinished_wait_ms} ms; Silero VAD threshold {args.silero_threshold})")  # fmt: skip
    paused, whole = utterances(callers(args.voices))
    print(f"{len(paused)} paused and {len(whole)} whole utterances ({args.voices} voices, clean and degraded)\n")
    print(f"{'setting':22} {'cut-offs':>9} {'clean':>6} {'degr.':>6} {'end delay p50':>14} {'p95':>6} {'p99':>6} "
          f"{'p95 clean':>10} {'degr.':>6} {'CPU ms/decision':>16}")  # fmt: skip
    shown: list[str] = []
    for setting in chosen:
        cut: dict[str, list[bool]] = {"clean": [], "degraded": []}
        cpu: list[float] = []
        recognition_ms: list[int] = []
        taken_back: list[int] = []  # paused utterances whose reply was taken back: how long after its decision
        for utterance in paused:
            out = run(setting, utterance.pcm)
            taken_back += out.taken_back_ms
            cpu += out.decisions_cpu_ms
            recognition_ms += out.recognition_ms
            over_early = bool(out.ends_ms) and out.ends_ms[0] < utterance.end_ms - 300  # before the last words
            cut[utterance.line].append(over_early)
            if over_early:
                shown.append(f"  {setting.name}: {utterance.voice}, {utterance.line}: {utterance.text!r}"
                             + (f" heard {out.heard[0]!r}" if out.heard else ""))  # fmt: skip
        delays: dict[str, list[float]] = {"clean": [], "degraded": []}
        not_over = 0  # whole utterances whose turn was not over when the audio ran out (3 s after the last word)
        decided: list[int] = []  # with went_on: from the last word to the words decided
        whole_taken_back = 0  # whole utterances whose reply was taken back (noise or breath after the words)
        for utterance in whole:
            out = run(setting, utterance.pcm)
            whole_taken_back += len(out.taken_back_ms)
            if out.taken_back_ms:
                shown.append(f"  {setting.name}: {utterance.voice}, {utterance.line}: {utterance.text!r} (whole) "
                             f"taken back {out.taken_back_ms[0]} ms after its decision")  # fmt: skip
            cpu += out.decisions_cpu_ms
            recognition_ms += out.recognition_ms
            after = [e for e in out.ends_ms if e >= utterance.end_ms - 300]
            decided += [d - utterance.end_ms for d in out.decided_at_ms if d >= utterance.end_ms - 300][:1]
            if after:
                delays[utterance.line].append(after[0] - utterance.end_ms)
            else:  # counted at the audio's end: a lower bound, not left out
                not_over += 1
                delays[utterance.line].append(len(utterance.pcm) * 1000 // TELEPHONE_RATE - utterance.end_ms)
        every = delays["clean"] + delays["degraded"]
        cut_all = cut["clean"] + cut["degraded"]
        cpu_text = f"{statistics.mean(cpu):.1f}" if cpu else "-"
        print(f"{setting.name:22} {share(cut_all):>9.1%} {share(cut['clean']):>6.1%} {share(cut['degraded']):>6.1%} "
              f"{pct(every, 50):>11.0f} ms {pct(every, 95):>6.0f} {pct(every, 99):>6.0f} "
              f"{pct(delays['clean'], 95):>10.0f} {pct(delays['degraded'], 95):>6.0f} {cpu_text:>16}")  # fmt: skip
        if recognition_ms:
            print(f"{'':22} recognition wall time, one at a time: p50 {pct(recognition_ms, 50):.0f} ms, "
                  f"p95 {pct(recognition_ms, 95):.0f} ms")  # fmt: skip
        if decided:
            print(f"{'':22} words decided after the last word (whole utterances; the reply waits for it): p50 "
                  f"{pct(decided, 50):.0f} ms, p95 {pct(decided, 95):.0f} ms")  # fmt: skip
        if setting.take_back_ms is not None:
            heard = sum(1 for t in taken_back if t > args.reply_ms)  # after the reply's first audio
            print(f"{'':22} replies taken back: {len(taken_back)} of {len(paused)} paused utterances, {heard} after "
                  f"the caller heard them begin (reply {args.reply_ms} ms after the decision); {whole_taken_back} of "
                  f"{len(whole)} whole utterances")  # fmt: skip
        if not_over:
            print(f"{'':22} {not_over} whole utterance(s) not over when the audio ran out, 3 s after the last word "
                  "(counted at that length in the delays)")  # fmt: skip
    if args.show_cut_offs:
        print("\ncut off in the pause (and whole requests whose reply was taken back):", *shown, sep="\n")


def share(flags: list[bool]) -> float:
    return sum(flags) / len(flags) if flags else float("nan")


if __name__ == "__main__":
    main()
