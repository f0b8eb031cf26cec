"""One queue of recognitions for every call of a gateway, served by threads of its own.

Recognitions used to run in asyncio's default thread pool, which the calls also need for synthesis, store reads and
Twilio's REST API: under load every pool thread sat waiting on the recogniser and a sentence to synthesise or a call
to transfer waited behind them. Here the recogniser has exactly as many threads as the model runs at once, the turn a
caller has finished goes before speculative recognitions (started at a pause, in case the caller has finished), and
a speculation nobody waits for any more (the caller went on) is dropped before it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from dataclasses import dataclass

import numpy as np

from voice.asr.base import AsrEngine, RecognitionContext, Transcript

FINISHED_TURN, SPECULATION = 0, 1  # priorities: lower first


STOP = 9  # after every job queued before it


@dataclass
class _Job:
    audio: np.ndarray
    sample_rate: int
    context: RecognitionContext | None
    future: asyncio.Future[Transcript]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Transcript], result: Transcript | None, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)


class RecognitionQueue:
    def __init__(self, asr: AsrEngine, workers: int) -> None:
        self._asr = asr
        self._jobs: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self.skipped = 0  # speculations dropped before they ran
        self._threads = [
            threading.Thread(target=self._serve, name=f"recogniser-{i}", daemon=True) for i in range(max(1, workers))
        ]
        for thread in self._threads:
            thread.start()

    def submit(
        self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None, *, speculative: bool = False
    ) -> asyncio.Future[Transcript]:
        """Recognise ``audio`` on the queue's threads; the future is the transcript (or the engine's error).
        Cancelling the future of a recognition that has not started yet drops it."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Transcript] = loop.create_future()
        priority = SPECULATION if speculative else FINISHED_TURN
        self._jobs.put((priority, next(self._order), _Job(audio, sample_rate, context, future, loop)))
        return future

    def _serve(self) -> None:
        while True:
            _, _, job = self._jobs.get()
            if job is None:
                return
            if job.future.cancelled():  # read across threads: at worst a cancelled job still runs, unused
                self.skipped += 1
                continue
            result: Transcript | None = None
            error: BaseException | None = None
            try:
                result = self._asr.transcribe(job.audio, job.sample_rate, job.context)
            except Exception as e:  # handed to the call that asked, which knows what to do with it
                error = e
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    def close(self) -> None:
        """Stop the threads once the jobs queued before are done (none are taken after)."""
        for _ in self._threads:
            self._jobs.put((STOP, next(self._order), None))
        for thread in self._threads:
            thread.join(timeout=10)
