"""The line's recognition queue (voice/asr/queue.py): a finished turn before speculations, a speculation nobody waits
for is not run, an engine's error reaches the call that asked, and the default thread pool stays free meanwhile."""

import asyncio
import threading

import numpy as np
import pytest

from voice.asr.base import AsrError, RecognitionContext, Transcript
from voice.asr.queue import RecognitionQueue


class GatedAsr:
    """Recognises the number each clip starts with; waits for ``gate`` first, so jobs pile up behind the first."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.heard: list[int] = []
        self.hurried: list[bool] = []
        self.alone: dict[int, bool] = {}  # by clip

    def transcribe(self, audio, sample_rate, context=None):  # type: ignore[no-untyped-def]
        self.gate.wait(10)
        n = int(audio[0])
        self.heard.append(n)
        self.hurried.append(context is not None and context.hurry)
        self.alone[n] = context is not None and context.alone
        if n < 0:
            raise AsrError("the engine failed", retryable=False)
        return Transcript(text=f"clip {n}", confidence=0.9, language="en", audio_s=len(audio) / sample_rate)


def clip(n: int) -> np.ndarray:
    return np.full(800, n, dtype=np.float32)


async def test_finished_turns_go_first_and_a_dropped_speculation_never_runs():
    asr = GatedAsr()
    recognitions = RecognitionQueue([asr])
    try:
        busy = recognitions.submit(clip(0), 8000, None)  # holds the one thread until the gate opens
        await asyncio.sleep(0.05)
        guess = recognitions.submit(clip(1), 8000, None, speculative=True)
        dropped = recognitions.submit(clip(2), 8000, None, speculative=True)
        finished = recognitions.submit(clip(3), 8000, None)
        dropped.cancel()  # the caller went on after that pause
        # Meanwhile the default pool (synthesis, store reads, Twilio's REST API) is not held by the recogniser.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), timeout=2) == "free"
        asr.gate.set()
        assert [t.text for t in await asyncio.gather(busy, finished, guess)] == ["clip 0", "clip 3", "clip 1"]
        assert asr.heard == [0, 3, 1] and recognitions.skipped == 1
    finally:
        asr.gate.set()
        recognitions.close()


async def test_an_engine_error_reaches_the_call_that_asked_and_the_queue_goes_on():
    asr = GatedAsr()
    asr.gate.set()
    recognitions = RecognitionQueue([asr, asr])
    try:
        with pytest.raises(AsrError, match="the engine failed"):
            await recognitions.submit(clip(-1), 8000, None)
        assert (await recognitions.submit(clip(4), 8000, None)).text == "clip 4"
    finally:
        recognitions.close()


async def test_a_speculation_that_is_the_finished_turn_goes_before_other_speculations():
    asr = GatedAsr()
    recognitions = RecognitionQueue([asr])
    try:
        assert recognitions.has_room()
        busy = recognitions.submit(clip(0), 8000, None)
        assert not recognitions.has_room(), "the one recogniser is taken: a call would not speculate now"
        other = recognitions.submit(clip(1), 8000, None, speculative=True)
        turn = recognitions.submit(clip(2), 8000, None, speculative=True)
        finished = recognitions.submit(clip(3), 8000, None)
        recognitions.promote(turn)  # the caller said nothing more after that pause
        asr.gate.set()
        await asyncio.gather(busy, other, turn, finished)
        assert asr.heard == [0, 3, 2, 1], "promoted after the finished turn already waiting, before the guess"
        recognitions.promote(turn)  # promoting a job that has run does nothing
        assert recognitions.has_room()
    finally:
        asr.gate.set()
        recognitions.close()


async def test_recognitions_taken_while_others_wait_are_asked_to_hurry():
    asr = GatedAsr()
    recognitions = RecognitionQueue([asr])
    try:
        first = recognitions.submit(clip(0), 8000, None)
        await asyncio.sleep(0.05)  # taken at once: nothing waits behind it
        behind = [recognitions.submit(clip(n), 8000, RecognitionContext(prompt="p")) for n in (1, 2)]
        assert recognitions.waiting == 2
        asr.gate.set()
        await asyncio.gather(first, *behind)
        # The second is taken while the third waits; the third is taken with nothing behind it.
        assert asr.hurried == [False, True, False] and recognitions.hurried == 1 and recognitions.waiting == 0
    finally:
        asr.gate.set()
        recognitions.close()


async def test_a_recognition_with_the_recognisers_to_itself_is_told_it_is_alone():
    asr = GatedAsr()
    recognitions = RecognitionQueue([asr, asr])
    try:
        first = recognitions.submit(clip(1), 8000, RecognitionContext(prompt="p"))
        await asyncio.sleep(0.05)  # taken with nothing else running or waiting
        beside = recognitions.submit(clip(2), 8000, RecognitionContext(prompt="p"))
        await asyncio.sleep(0.05)  # taken by the other recogniser while the first runs
        asr.gate.set()
        await asyncio.gather(first, beside)
        assert asr.alone == {1: True, 2: False}
        assert asr.hurried == [False, False], "nothing waited for a recogniser"
    finally:
        asr.gate.set()
        recognitions.close()
