"""The voice's disk cache: a restarted gateway says a sentence it said before without synthesising it again."""

import numpy as np

from voice.tts.base import Speech, TtsError
from voice.tts.registry import FallbackTts


class CountingVoice:
    name = "counting"

    def __init__(self, fail: bool = False) -> None:
        self.calls = 0
        self.fail = fail

    def synthesize(self, text: str) -> Speech:
        self.calls += 1
        if self.fail:
            raise TtsError("down")
        return Speech(np.full(1600, 100 * len(text), dtype=np.int16), 16000)


def test_a_second_process_reads_what_the_first_said_from_disk(tmp_path):
    first = CountingVoice()
    audio = FallbackTts(first, None, disk_cache=tmp_path / "voice").telephone("Our lines are open.")
    again = CountingVoice()
    restarted = FallbackTts(again, None, disk_cache=tmp_path / "voice")
    assert restarted.telephone("Our lines are open.") == audio and again.calls == 0
    restarted.telephone("Something new.")
    assert again.calls == 1 and len(list((tmp_path / "voice").glob("*.ulaw"))) == 2


def test_fallback_speech_is_not_kept_and_an_unwritable_cache_costs_only_the_cache(tmp_path):
    fallback = CountingVoice()
    tts = FallbackTts(CountingVoice(fail=True), fallback, disk_cache=tmp_path / "voice")
    tts.telephone("Hello.")
    assert not (tmp_path / "voice").exists() or not list((tmp_path / "voice").glob("*.ulaw"))
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    working = FallbackTts(CountingVoice(), None, disk_cache=blocked / "voice")
    assert working.telephone("Hello.")  # said, though nothing could be kept
