"""One queue of recognitions for every call of a gateway, served by threads of its own.

Recognitions used to run in asyncio's default thread pool, which the calls also need for synthesis, store reads and
Twilio's REST API: under load every pool thread sat waiting on the recogniser and a sentence to synthesise or a call
to transfer waited behind them. Here each recogniser has a thread of its own (the engine runs in this process, or in
a process of its own: voice/asr/processes.py), the turn a caller has finished goes before speculative recognitions
(started at a pause, in case the caller has finished), and a speculation nobody waits for any more (the caller went
on) is dropped before it runs. A call speculates only while a recogniser would otherwise be idle (``has_room``):
under load a speculation spends the CPU a finished turn is waiting for. While recognitions wait, each one taken is
asked to hurry (``RecognitionContext.hurry``: faster-whisper encodes a shorter window), so a line that falls behind
catches up instead of keeping callers in silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from voice.asr.base import Recogniser, RecognitionContext, Transcript

FINISHED_TURN, SPECULATION = 0, 1  # priorities: lower first


STOP = 9  # after every job queued before it


@dataclass
class _Job:
    audio: np.ndarray
    sample_rate: int
    context: RecognitionContext | None
    future: asyncio.Future[Transcript]
    loop: asyncio.AbstractEventLoop
    started: bool = False  # taken by a recogniser, or dropped (a promoted job is queued twice and run once)


def _settle(future: asyncio.Future[Transcript], result: Transcript | None, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        assert result is not None
        future.set_result(result)


class RecognitionQueue:
    def __init__(self, recognisers: Sequence[Recogniser]) -> None:
        """One thread per recogniser: the same engine several times where it runs that many recognitions at once,
        or one process each."""
        self._recognisers = list(recognisers)
        self._jobs: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self._order = itertools.count()
        self.skipped = 0  # speculations dropped before they ran
        self.hurried = 0  # recognitions asked to hurry: others were waiting behind them
        self._outstanding = 0  # jobs queued or running
        self._lock = threading.Lock()  # the counts, started flags and jobs not yet started, across threads
        self._pending: dict[asyncio.Future[Transcript], _Job] = {}  # jobs not started yet, by their future
        self._threads = [
            threading.Thread(target=self._serve, args=(asr,), name=f"recogniser-{i}", daemon=True)
            for i, asr in enumerate(self._recognisers)
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
        job = _Job(audio, sample_rate, context, future, loop)
        with self._lock:
            self._outstanding += 1
            self._pending[future] = job
        future.add_done_callback(self._dropped)
        self._jobs.put((priority, next(self._order), job))
        return future

    def _dropped(self, future: asyncio.Future[Transcript]) -> None:
        """A job cancelled before it started (the caller went on after a pause) no longer counts as waiting; its
        queue entry is skipped when a recogniser reaches it."""
        if not future.cancelled():
            return
        with self._lock:
            job = self._pending.pop(future, None)
            if job is None or job.started:
                return
            job.started = True  # taken by nobody: the entry left in the queue is skipped
            self._outstanding -= 1
            self.skipped += 1

    def promote(self, future: asyncio.Future[Transcript]) -> None:
        """The speculation behind ``future`` turned out to be the caller's finished turn: if it has not started, it
        goes before the other speculations now, like any finished turn."""
        with self._lock:
            job = self._pending.get(future)
            if job is None or job.started:
                return
        self._jobs.put((FINISHED_TURN, next(self._order), job))

    def has_room(self) -> bool:
        """Whether a recognition asked now would start at once (a recogniser is idle and nothing waits)."""
        return self._outstanding < len(self._threads)

    @property
    def waiting(self) -> int:
        """Recognitions queued and not yet taken by a recogniser."""
        return max(0, self._outstanding - len(self._threads))

    def _done(self) -> None:
        with self._lock:
            self._outstanding -= 1

    def _take(self, job: _Job) -> bool:
        """Mark ``job`` started; False when it already was (the other entry of a promoted speculation) or was
        dropped before it started."""
        with self._lock:
            if job.started:
                return False
            job.started = True
            self._pending.pop(job.future, None)
            return True

    def _serve(self, asr: Recogniser) -> None:
        while True:
            _, _, job = self._jobs.get()
            if job is None:
                return
            if not self._take(job):
                continue
            context = job.context
            if self.waiting:  # others wait behind this one: the line is behind
                context = replace(context or RecognitionContext(), hurry=True)
                self.hurried += 1
            elif self._outstanding == 1:  # no other recognition running or waiting: the cores are this one's
                context = replace(context or RecognitionContext(), alone=True)
            result: Transcript | None = None
            error: BaseException | None = None
            try:
                result = asr.transcribe(job.audio, job.sample_rate, context)
            except Exception as e:  # handed to the call that asked, which knows what to do with it
                error = e
            self._done()
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)

    def close(self) -> None:
        """Stop the threads once the jobs queued before are done (none are taken after)."""
        for _ in self._threads:
            self._jobs.put((STOP, next(self._order), None))
        for thread in self._threads:
            thread.join(timeout=10)
        for asr in {id(a): a for a in self._recognisers}.values():
            close = getattr(asr, "close", None)  # recognisers in processes of their own stop theirs
            if close is not None:
                close()
