"""faster-whisper (CTranslate2) batch recognizer: the default engine."""

from __future__ import annotations

import math
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from voice.asr.base import (
    AsrCapabilities,
    AsrError,
    DecodedSegment,
    Hypothesis,
    RecognitionContext,
    Transcript,
    join_transcripts,
    whisper_transcript,
)
from voice.asr.packaged_models import packaged_tiny_en
from voice.asr.registry import register_asr
from voice.codecs import ASR_RATE, resample
from voice.wer import normalize

if TYPE_CHECKING:
    from foundation.settings import AsrSettings


FRAMES_PER_SECOND = 100  # Whisper's mel frames
WHISPER_WINDOW_FRAMES = 3000  # the 30 s every input is padded to
CONTENT_MARGIN_FRAMES = 50  # silence kept after the speech when the window is cut


def _window_model_class() -> type:
    """A faster-whisper WhisperModel whose encoder sees a window fitted to the utterance instead of 30 s of padding.

    faster-whisper pads every input to Whisper's 30 s window, and the encoder's cost grows with the window, not with
    the speech: a caller's 3 s turn pays for 30 s. CTranslate2 encodes any length, so the padding is cut to the
    utterance plus a margin, never below ``window_s`` (shorter windows make Whisper repeat itself)."""
    from faster_whisper import WhisperModel

    class WindowedWhisperModel(WhisperModel):  # type: ignore[misc]
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            # Per thread: frames of speech in the utterance it is recognising, and the shortest window to encode.
            self.content = threading.local()

        def encode(self, features: np.ndarray):  # type: ignore[no-untyped-def]
            frames = getattr(self.content, "frames", None)
            shortest = getattr(self.content, "window_frames", WHISPER_WINDOW_FRAMES)
            if frames is not None and features.shape[-1] > shortest:
                needed = math.ceil((frames + CONTENT_MARGIN_FRAMES) / 100) * 100
                features = features[..., : min(features.shape[-1], max(shortest, needed))]
            return super().encode(features)

        def _split_segments_by_timestamps(  # type: ignore[no-untyped-def]
            self, tokenizer, tokens, time_offset, segment_size, segment_duration, seek
        ):
            segments, next_seek, single_ending = super()._split_segments_by_timestamps(
                tokenizer, tokens, time_offset, segment_size, segment_duration, seek
            )
            frames = getattr(self.content, "frames", None)
            if single_ending or frames is None or seek + segment_size < frames - TAIL_SLACK_FRAMES:
                return segments, next_seek, single_ending
            if _unfinished_words(tokens, tokenizer.timestamp_begin):
                return segments, next_seek, single_ending  # words the window did not finish: heard again from there
            # The window reached the end of the utterance and every word it wrote is in a segment: the utterance is
            # heard. Left to itself faster-whisper would decode again from the last word's end (only 100 ms of
            # silence and the margin, as the endpointer cut it), paying another 30 s encoder pass and, for the ". ."
            # Whisper writes for that silence, its temperature fallback: ~1.5 s of CPU per turn on an AMD EPYC
            # without AVX-512, most turns when biased by the domain prompt. A tail that did hold speech is heard
            # again by _heard_to_the_end (the words stopped early).
            return segments, seek + segment_size, True

    return WindowedWhisperModel


WARM_UP_SAMPLES = ASR_RATE  # a second of silence recognised as each model is loaded
TAIL_SLACK_FRAMES = 2  # faster-whisper counts the utterance's mel frames one or two short of ours


def _unfinished_words(tokens: list[int], timestamp_begin: int) -> bool:
    """The window's tokens end in words after the last pair of timestamps: a segment faster-whisper drops and decodes
    again (when the tokens have no such pair, all their words are kept as one segment)."""
    pairs = [i for i in range(1, len(tokens)) if tokens[i] >= timestamp_begin and tokens[i - 1] >= timestamp_begin]
    return bool(pairs) and any(t < timestamp_begin for t in tokens[pairs[-1] :])


TOKENS_PER_SECOND = 6  # fast speech is about 3 words, 4-5 tokens, a second
TOKENS_AT_LEAST = 16
TOKENS_AT_MOST = 224  # Whisper's 448-token context holds the prompt too (at most half of it): audio over a minute


def max_new_tokens(audio_s: float) -> int:
    """The most tokens a caller's utterance can hold. Noise can send Whisper into a loop ("work, work, work, ...")
    until its 448-token limit, decoded again at each fallback temperature: seconds of CPU for nothing. The bound
    stops that and never binds on speech."""
    return min(TOKENS_AT_MOST, TOKENS_AT_LEAST + math.ceil(audio_s * TOKENS_PER_SECOND))


STOPPED_EARLY_S = 1.5  # the words end this long before the audio does: the recogniser stopped writing


def stopped_early(transcript: Transcript) -> bool:
    """The words end well before the audio (an utterance keeps only 100 ms of silence after its last voiced frame):
    the recogniser stopped writing before the caller stopped speaking."""
    ends = [w.end for w in transcript.words if w.end is not None]
    return bool(ends) and transcript.audio_s - ends[-1] > STOPPED_EARLY_S


REPEATED_AT_LEAST = 4  # the same word this many times in a row: Whisper is looping, not transcribing


def looping_from(words: list[str]) -> int | None:
    """Where the first run of one word repeated ``REPEATED_AT_LEAST`` times in a row starts, or None."""
    tokens = [w.strip(".,!?").lower() for w in words]
    run = 1
    for i in range(1, len(tokens)):
        run = run + 1 if tokens[i] == tokens[i - 1] and tokens[i] else 1
        if run >= REPEATED_AT_LEAST:
            return i - run + 1
    return None


def skipping_from(transcript: Transcript) -> int | None:
    """The first word after a stretch of more than ``STOPPED_EARLY_S`` with no words in an utterance (which holds no
    such silence: the recogniser skipped speech and wrote on later, "My number in 850, [5.7 s] $1,"), or None."""
    ends = [(w.start, w.end) for w in transcript.words]
    for i in range(1, len(ends)):
        end, start = ends[i - 1][1], ends[i][0]
        if end is not None and start is not None and start - end > STOPPED_EARLY_S:
            return i
    return None


def went_astray(transcript: Transcript) -> bool:
    """Stopped writing early, skipped speech, or looping on one word ("$1,ro $1,ro $1,ro $1,ro ...": seen on a CPU
    without AVX-512 where a machine with it stopped early instead)."""
    return (
        stopped_early(transcript)
        or skipping_from(transcript) is not None
        or looping_from(transcript.text.split()) is not None
    )


MIN_REST_S = 0.3  # less audio than this after the trusted words is not heard again
CAREFUL_BEAM = 5  # a recognition heard again after going astray: beam search, no sampling (see _transcribe)


def trusted_part(transcript: Transcript) -> tuple[Transcript, float] | None:
    """(the transcript of the words before the recogniser went astray, how far into the audio they reach) for one
    that stopped writing early, skipped speech or loops; None when it did none of these, or has no word times."""
    timed = [w for w in transcript.words if w.start is not None and w.end is not None]
    if len(timed) != len(transcript.words) or not timed:
        return None
    loop, skip = looping_from([w.text for w in timed]), skipping_from(transcript)
    if loop is not None and (skip is None or loop < skip):
        kept, until = timed[:loop], timed[loop].start
    elif skip is not None:
        kept, until = timed[:skip], timed[skip - 1].end
    elif stopped_early(transcript):
        kept, until = timed, timed[-1].end
    else:
        return None
    assert until is not None
    text = " ".join(w.text for w in kept)
    return replace(transcript, text=text, words=tuple(kept), alternatives=()), until


@register_asr
class FasterWhisperAsr:
    name: ClassVar[str] = "faster_whisper"
    capabilities: ClassVar[AsrCapabilities] = AsrCapabilities(
        streaming_partials=False, word_confidences=True, languages=("en",), contextual_biasing=True
    )

    def __init__(self, settings: AsrSettings) -> None:
        self._settings = settings
        model_path = settings.model_path or packaged_tiny_en()
        if not Path(model_path).is_dir():
            hint = " (`helpline models` puts the packaged base model there)" if settings.model == "base" else ""
            raise AsrError(f"faster-whisper model directory not found: {model_path}{hint}")
        model_class = _window_model_class()

        def load(threads: int) -> Any:
            return model_class(
                str(model_path),
                device="cpu",
                compute_type=settings.compute_type,
                cpu_threads=threads,
                num_workers=settings.workers,
            )

        self._shared = load(settings.cpu_threads)
        # A recognition with the cores to itself runs on more threads: the same model, loaded a second time with them.
        more = 0 < settings.cpu_threads < settings.cpu_threads_alone  # 0 threads: the engine's own number, always
        self._alone = load(settings.cpu_threads_alone) if more else self._shared
        self._using = threading.local()  # the model this thread's recognition runs on
        self._window_frames = round(settings.window_s * FRAMES_PER_SECOND)
        under_load = settings.window_under_load_s
        self._hurried_frames = round(under_load * FRAMES_PER_SECOND) if under_load else self._window_frames
        for alone in {False, more}:  # the first recognition on each loading allocates: not a caller's
            self.transcribe(np.zeros(WARM_UP_SAMPLES, dtype=np.float32), ASR_RATE, RecognitionContext(alone=alone))

    @property
    def _model(self) -> Any:
        """The loading this thread's recognition runs on."""
        return getattr(self._using, "model", self._shared)

    def transcribe(self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None) -> Transcript:
        audio16 = resample(audio.astype(np.float32), sample_rate, ASR_RATE)
        context = context or RecognitionContext()
        self._using.model = self._alone if context.alone else self._shared
        self._model.content.frames = math.ceil(len(audio16) * FRAMES_PER_SECOND / ASR_RATE)
        self._model.content.window_frames = self._hurried_frames if context.hurry else self._window_frames
        try:
            transcript = self._transcribe(audio16, context)
            if went_astray(transcript) and (context.hurry or context.prompt or context.hotwords):
                # Biased by the domain prompt, or hurried into the shorter window, Whisper sometimes ends the text
                # early ("My personal number in 850," for an 8 s turn with a question after the number) or loops:
                # the caller's request would be lost, so the utterance is heard again, whole and unbiased.
                self._model.content.window_frames = self._window_frames
                again = self._transcribe(audio16, RecognitionContext(), careful=True)
                if not went_astray(again) or len(again.words) > len(transcript.words):
                    transcript = again
            return self._heard_to_the_end(audio16, transcript)
        finally:
            self._model.content.frames = None
            self._using.model = self._shared

    def _heard_to_the_end(self, audio16: np.ndarray, transcript: Transcript) -> Transcript:
        """A transcript that still stops early, skips speech or loops keeps its words up to there, and the audio
        after them is heard on its own, carefully."""
        trusted = trusted_part(transcript)
        if trusted is None:
            return transcript
        head, until = trusted
        rest16 = audio16[round(until * ASR_RATE) :]
        if len(rest16) < MIN_REST_S * ASR_RATE:
            return head
        self._model.content.frames = math.ceil(len(rest16) * FRAMES_PER_SECOND / ASR_RATE)
        self._model.content.window_frames = self._window_frames
        rest = self._transcribe(rest16, RecognitionContext(), careful=True)
        trusted_rest = trusted_part(rest) if looping_from(rest.text.split()) is not None else None
        if trusted_rest is not None:  # looping still: the loop is not kept
            rest = trusted_rest[0]
        return join_transcripts([replace(head, audio_s=until), rest.shifted(until)])

    def _transcribe(self, audio16: np.ndarray, context: RecognitionContext, careful: bool = False) -> Transcript:
        """One decoding. ``careful``: a beam of ``CAREFUL_BEAM`` and no temperature fallback. The fallback samples
        (at 0.2, 0.4, ...) when a greedy decoding looks poor, so a hard voice's second hearing was a coin toss: an
        espeak-ng caller reading a number out, then asking, was heard whole on 9 runs in 10 and lost the question on
        the tenth; the careful decoding heard it the same way, whole, every time."""
        sampling = {"temperature": 0.0} if careful else {}
        try:
            segments, info = self._model.transcribe(
                audio16,
                initial_prompt=context.prompt or None,
                hotwords=context.hotwords or None,
                language=self._settings.language,
                beam_size=max(CAREFUL_BEAM, self._settings.beam_size) if careful else self._settings.beam_size,
                **sampling,
                condition_on_previous_text=False,
                vad_filter=False,
                word_timestamps=self._settings.word_confidences,
                max_new_tokens=max_new_tokens(len(audio16) / ASR_RATE),
                no_speech_threshold=self._settings.no_speech_threshold,
                compression_ratio_threshold=self._settings.compression_ratio_threshold,
            )
            # The segments are a lazy generator: the decoding happens here, in the caller's (worker) thread.
            segments = list(segments)
        except (RuntimeError, ValueError) as e:
            raise AsrError(f"faster-whisper failed: {e}", retryable=isinstance(e, RuntimeError)) from e
        decoded = [
            DecodedSegment(
                s.text,
                s.avg_logprob,
                len(s.tokens),
                s.no_speech_prob,
                tuple((w.word, w.probability) for w in s.words or ()),
                tuple((w.start, w.end) for w in s.words or ()),
            )
            for s in segments
        ]
        alternatives: tuple[Hypothesis, ...] = ()
        if segments and self._settings.nbest > 1:
            alternatives = self._alternatives(audio16, " ".join(s.text.strip() for s in segments))
        audio_s = len(audio16) / ASR_RATE
        return whisper_transcript(decoded, info.language, audio_s, alternatives, self._settings.invented_tail_below)

    def _alternatives(self, audio16: np.ndarray, best: str) -> tuple[Hypothesis, ...]:
        """The runners-up of a beam search over the utterance (one window: a caller's turn is shorter than 30 s), for
        n-best metadata. A second decoding, so it costs about one more recognition: only when ``nbest`` > 1."""
        from faster_whisper.audio import pad_or_trim
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model, n = self._model, self._settings.nbest
        features = model.feature_extractor(audio16)[..., : model.feature_extractor.nb_max_frames]
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, "transcribe", self._settings.language)
        try:
            result = model.model.generate(
                model.encode(pad_or_trim(features)),
                [model.get_prompt(tokenizer, [], without_timestamps=True)],
                beam_size=max(n, self._settings.beam_size),
                num_hypotheses=n,
                return_scores=True,
                max_length=model.max_length,
                suppress_blank=True,
                suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1]) or []),
            )[0]
        except (RuntimeError, ValueError) as e:
            raise AsrError(f"faster-whisper n-best failed: {e}", retryable=True) from e
        out: list[Hypothesis] = []
        seen = {" ".join(normalize(best))}  # hypotheses that differ only in case or punctuation say nothing new
        for tokens, score in zip(result.sequences_ids, result.scores, strict=True):
            text = tokenizer.decode(tokens).strip()
            words = " ".join(normalize(text))
            if words and words not in seen:
                seen.add(words)
                # CTranslate2's score: the sum of token log-probabilities over the length (length penalty 1).
                out.append(Hypothesis(text, round(min(1.0, math.exp(score)), 3)))
        return tuple(out)
