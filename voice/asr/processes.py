"""A recogniser in a process of its own: the engine is loaded and run in a child process, and ``transcribe`` sends
the audio there and waits for the words.

Why: in the gateway's own process a recognition's Python parts (features, tokens, word alignment) take turns with
every call's 20 ms audio frames under one interpreter lock, and under load the gateway process stayed near one core
while the machine had the other half free (README "Faults, hostile input, load"). A child process has its own
interpreter: the two cores both recognise, and the gateway's event loop is left to the calls.

The child's end of the pipe closes when the gateway dies, so a child never outlives it. A child that dies or hangs
is replaced and the recognition asked of it is tried once more in the new one; if that child dies too, it fails with a
retryable ``AsrError`` (the call asks again or apologises, as for any engine error), never a silent caller.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from voice.asr.base import AsrCapabilities, AsrError, RecognitionContext, Transcript
from voice.asr.registry import asr_engine_class, create_asr

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from foundation.settings import AsrSettings

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # loading a model: seconds on a busy machine, never minutes
# No caller's turn (at most one 28 s window, its tokens bounded) takes a recogniser this long: past it the child is
# taken for hung and replaced.
RECOGNITION_TIMEOUT_S = 60.0


def _serve(conn: Connection, settings: AsrSettings) -> None:
    """The child: load the engine, say so (or say why not), then recognise until the pipe closes."""
    try:
        engine = create_asr(settings)
    except Exception as e:  # reported to the parent, which stops the start with it
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ready", None))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):  # the gateway is gone
            return
        if job is None:
            return
        audio, sample_rate, context = job
        try:
            conn.send(("words", engine.transcribe(audio, sample_rate, context)))
        except Exception as e:  # the call that asked decides what to do with it
            conn.send(("error", (f"{e}", bool(getattr(e, "retryable", False)))))


class RecogniserProcess:
    """The engine named in ``settings``, run in a child process; one recognition at a time (the line's recognition
    queue gives each of its threads a process of its own)."""

    name: ClassVar[str] = "process"
    capabilities: AsrCapabilities  # the engine's own, read from its class without loading it

    def __init__(self, settings: AsrSettings, label: str = "recogniser") -> None:
        engine_class = asr_engine_class(settings.engine)
        if engine_class.capabilities.streaming_partials:
            raise AsrError(f"{settings.engine} recognises while the caller speaks: it runs in the gateway's process")
        self.capabilities = engine_class.capabilities
        # One recognition at a time in each child, on the threads the settings give it.
        self._settings = settings.model_copy(update={"workers": 1})
        self._label = label
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")  # never fork a process that runs threads
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._launch()

    def _launch(self) -> None:
        """Start the child; ``wait_ready`` waits for its model (several children load at once that way)."""
        conn, child_conn = self._context.Pipe()
        process = self._context.Process(
            target=_serve, args=(child_conn, self._settings), name=f"helpline-{self._label}", daemon=True
        )
        process.start()
        child_conn.close()
        self._process, self._conn = process, conn

    def wait_ready(self) -> None:
        """Wait until the child has loaded its engine. Raises ``AsrError`` naming why it could not."""
        process, conn = self._process, self._conn
        assert process is not None and conn is not None
        try:
            if not conn.poll(START_TIMEOUT_S):
                self._stop()
                raise AsrError(f"{self._label}: no model loaded in {START_TIMEOUT_S:.0f} s by the recogniser process")
            kind, detail = conn.recv()
        except (EOFError, OSError) as e:
            process.join(5)
            self._stop()
            code = process.exitcode
            raise AsrError(f"{self._label}: the recogniser process exited while loading (exit code {code})") from e
        if kind != "ready":
            self._stop()
            raise AsrError(f"{self._label}: {detail}")

    def transcribe(self, audio: np.ndarray, sample_rate: int, context: RecognitionContext | None = None) -> Transcript:
        job = (np.ascontiguousarray(audio, dtype=np.float32), sample_rate, context)
        with self._lock:
            for attempt in (1, 2):  # a child found dead is replaced and asked again, once
                if self._process is None or not self._process.is_alive():
                    log.warning("%s: the recogniser process is gone; starting another", self._label)
                    self._stop()
                    self._launch()
                    self.wait_ready()
                assert self._conn is not None
                try:
                    self._conn.send(job)
                    if not self._conn.poll(RECOGNITION_TIMEOUT_S):
                        self._stop()
                        raise AsrError(f"{self._label}: no words in {RECOGNITION_TIMEOUT_S:.0f} s", retryable=True)
                    kind, payload = self._conn.recv()
                    break
                except (EOFError, OSError) as e:
                    self._stop()
                    if attempt == 2:
                        raise AsrError(f"{self._label}: the recogniser process died", retryable=True) from e
        if kind == "error":
            message, retryable = payload
            raise AsrError(message, retryable=retryable)
        return payload  # type: ignore[no-any-return]

    def _stop(self) -> None:
        process, conn, self._process, self._conn = self._process, self._conn, None, None
        if conn is not None:
            conn.close()
        if process is not None:
            process.join(2)
            if process.is_alive():
                process.kill()
                process.join(2)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def close(self) -> None:
        """Stop the child (it ends when its pipe closes)."""
        with self._lock:
            self._stop()
