"""Sentences Whisper writes after the caller stopped are not the caller's words (pure units, no model).

The word probabilities are those faster-whisper tiny.en gave on the tests' Piper caller with the endpointer's quiet
after the speech."""

from voice.asr.base import DecodedSegment, invented_tail, whisper_transcript


def _segment(words: list[tuple[str, float]], avg_logprob: float = -0.3) -> DecodedSegment:
    return DecodedSegment("".join(w for w, _ in words), avg_logprob, len(words), 0.02, tuple(words))


PERSON = [(" I", 0.9), (" want", 1.0), (" to", 1.0), (" talk", 1.0), (" to", 1.0), (" a", 1.0), (" person.", 1.0)]


def test_a_sentence_the_model_barely_believes_after_the_speech_is_dropped():
    assert invented_tail([*PERSON, (" 1.", 0.01)]) == 1
    assert invented_tail([*PERSON, (" .", 0.01), (" 1.", 0.0)]) == 2  # one invented sentence after another
    paid = [(" When", 0.9), (" is", 1.0), (" it", 0.9), (" paid?", 0.92), (" Thank", 0.02), (" you.", 0.99)]
    assert invented_tail(paid) == 2  # the tail's later words can look sure: its first word gives it away


def test_the_callers_own_sentences_stay():
    assert invented_tail(PERSON) == 0
    assert invented_tail([(" No", 0.8), (" thanks.", 0.9), (" Goodbye.", 0.84), (" Bye.", 0.65)]) == 0
    two = [*PERSON, (" It", 0.7), (" is", 0.9), (" about", 0.9), (" my", 0.9), (" appeal.", 0.8)]
    assert invented_tail(two) == 0
    # An unsure first sentence is never dropped: it is all the caller said.
    assert invented_tail([(" Housing", 0.05), (" alone.", 0.3)]) == 0
    assert invented_tail([]) == 0


def test_the_threshold_is_a_setting_and_zero_keeps_everything():
    assert invented_tail([*PERSON, (" 1.", 0.01)], below=0.0) == 0
    assert invented_tail([*PERSON, (" Okay.", 0.08)], below=0.05) == 0


def test_the_transcript_loses_the_tail_in_text_words_and_confidence():
    kept = whisper_transcript([_segment([*PERSON, (" time.", 0.01)])], "en", 2.4)
    whole = whisper_transcript([_segment([*PERSON, (" time.", 0.01)])], "en", 2.4, tail_below=0.0)
    assert kept.text == "I want to talk to a person."
    assert [w.text for w in kept.words] == ["I", "want", "to", "talk", "to", "a", "person."]
    assert whole.text == "I want to talk to a person. time."
    assert kept.confidence > whole.confidence  # the invented word's log-probability no longer drags the mean down


def test_a_tail_in_a_segment_of_its_own_takes_the_segment_with_it():
    first = _segment(PERSON)
    tail = DecodedSegment(" We'll see you next time.", -2.5, 5, 0.6, ((" We'll", 0.03), (" see", 0.5), (" you", 0.9),
                                                                    (" next", 0.9), (" time.", 0.9)))  # fmt: skip
    t = whisper_transcript([first, tail], "en", 4.0)
    assert t.text == "I want to talk to a person."
    assert t.no_speech == 0.02  # the dropped segment's no-speech belief goes with it


def test_no_segments_is_an_empty_transcript():
    t = whisper_transcript([], "en", 1.0)
    assert t.is_empty and t.no_speech == 1.0 and t.confidence == 0.0


def test_words_that_end_well_before_the_audio_stopped_early():
    from voice.asr.base import Transcript, Word
    from voice.asr.faster_whisper import stopped_early

    words = (Word("My", 0.9, 0.0, 0.3), Word("number", 0.9, 0.3, 0.7), Word("850,", 0.5, 1.3, 2.1))
    assert stopped_early(Transcript("My number 850,", 0.5, "en", 9.2, words))
    assert not stopped_early(Transcript("My number 850,", 0.5, "en", 2.4, words))
    assert not stopped_early(Transcript("", 0.0, "en", 9.2))  # nothing written: nothing to go on


def _timed(*words: tuple[str, float, float], audio_s: float = 9.2):  # type: ignore[no-untyped-def]
    from voice.asr.base import Transcript, Word

    return Transcript(
        " ".join(w for w, _, _ in words), 0.5, "en", audio_s, tuple(Word(w, 0.5, s, e) for w, s, e in words)
    )


def test_what_is_kept_of_a_recognition_that_went_astray():
    """Words the recogniser wrote (as seen on an espeak-ng caller reading a number out): up to where it stopped,
    skipped speech or started looping, with how far into the audio that is, so the rest is heard again."""
    from voice.asr.faster_whisper import trusted_part, went_astray

    start = (("My", 0.0, 0.3), ("number", 0.3, 0.7), ("850,", 1.3, 2.1))
    stopped = _timed(*start)
    assert went_astray(stopped)
    kept, until = trusted_part(stopped)  # type: ignore[misc]
    assert kept.text == "My number 850," and until == 2.1

    skipped = _timed(*start, ("$1,", 7.8, 9.2))  # 5.7 s of speech with no words, then one
    assert went_astray(skipped)
    kept, until = trusted_part(skipped)  # type: ignore[misc]
    assert [w.text for w in kept.words] == ["My", "number", "850,"] and until == 2.1

    looping = _timed(*start, *(("$2,000", 2.1 + i, 3.0 + i) for i in range(5)))
    assert went_astray(looping)
    kept, until = trusted_part(looping)  # type: ignore[misc]
    assert kept.text == "My number 850," and until == 2.1

    whole = _timed(*start, ("how", 2.4, 2.6), ("much", 2.6, 2.9), ("child", 3.0, 3.3), ("allowance?", 3.3, 4.0),
                   audio_s=4.1)  # fmt: skip
    assert not went_astray(whole) and trusted_part(whole) is None
    assert not went_astray(_timed(("no", 0.0, 0.3), ("no", 0.3, 0.5), ("no,", 0.5, 0.7), audio_s=0.8))


def test_a_window_is_heard_again_only_for_words_it_left_unfinished():
    """Tokens of one decoding, with timestamps from 100 up: the words after the last pair of timestamps are a segment
    faster-whisper drops and decodes again; words with no such pair after them are all kept."""
    from voice.asr.faster_whisper import _unfinished_words

    assert _unfinished_words([100, 5, 6, 130, 130, 7, 8], 100)  # "... <1.30><1.30> more words" and no end
    assert not _unfinished_words([100, 5, 6, 130, 130], 100)  # the text closed by a pair: nothing left over
    assert not _unfinished_words([100, 5, 6, 7], 100)  # no closing timestamp: one segment, every word in it
    assert not _unfinished_words([100, 5, 6, 130], 100)  # a single closing timestamp
