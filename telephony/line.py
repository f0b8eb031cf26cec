"""The line: what a gateway process loads once and shares between its calls, and the URLs Twilio reaches it at."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.exc import SQLAlchemyError
from twilio.request_validator import RequestValidator

from analytics.journal import InterruptedMarked
from analytics.store import CallStore
from analytics.writer import StoreWriter
from foundation.routing_table import RoutingTable
from foundation.settings import Settings
from nlu.asr_context import AsrVocabulary
from nlu.client import RasaClient
from telephony.call_control import CallControl, QueueTable
from telephony.call_parts import CallParts, ReadyAudio
from telephony.call_record import CallRecord
from telephony.drills import DrillAsr, Drills, DrillTts
from telephony.metrics import LineMetrics, LineReadings
from telephony.routing import KeypadMenu, fixed_sentences
from voice.asr import AsrError, create_asr
from voice.asr.base import Recogniser
from voice.asr.processes import RecogniserProcess
from voice.asr.queue import RecognitionQueue
from voice.asr.registry import asr_engine_class
from voice.end_of_turn import EndOfTurn, create_end_of_turn
from voice.silero import SileroModel
from voice.tts import TtsError, create_tts
from voice.tts.base import split_sentences
from voice.tts.registry import FallbackTts
from voice.vad import SpeechDetector

log = logging.getLogger(__name__)

MEDIA_PATH = "/twilio/media"
VOICE_PATH = "/twilio/voice"
HANDOFF_PATH = "/twilio/handoff"  # + /<call sid>: the TwiML that puts a call through to its queue
EVENTS_PATH = "/twilio/events"  # TaskRouter event callbacks, <Enqueue>/<Dial> action callbacks
AGENT_PATH = "/agent/calls"
KEPT_CALL_RECORDS = 1000
STREAM_TOKEN = "stream_token"


@dataclass
class Line:
    """What the gateway process loads once and shares between calls."""

    settings: Settings
    asr: Recogniser
    tts: FallbackTts
    rasa: RasaClient
    ready: ReadyAudio  # the prompts said without synthesis at the time (the apology, the holding phrase)
    validator: RequestValidator
    calls: OrderedDict[str, CallRecord]
    store: CallStore
    queue_table: QueueTable
    vocabulary: RoutingTable
    call_control: CallControl | None = None  # None: no Twilio account configured (no REST call control)
    worker: str = ""  # this gateway, as the call store knows it (host:port)
    writer: StoreWriter = field(init=False)  # every call-store write of the calls, journaled (analytics/writer.py)
    keypad: KeypadMenu | None = None
    smalltalk: frozenset[str] = frozenset()
    recognition: AsrVocabulary | None = None  # contextual biasing of speech recognition (ASR__BIASING)
    repair: AsrVocabulary | None = None  # the agency's misheard words put right (ASR__KEY_WORD_REPAIR)
    end_of_turn: EndOfTurn | None = None  # the end-of-turn model (END_OF_TURN__ENGINE); None: fixed silence
    silero: SileroModel | None = None  # Silero VAD (VAD__DETECTOR=silero); None: WebRTC VAD
    voice_warm: threading.Event = field(default_factory=threading.Event)  # fixed sentences synthesised
    drills: Drills | None = None  # fault drills, when enabled
    active_calls: set[str] = field(default_factory=set)  # call sids with a live media stream here
    recognitions: RecognitionQueue | None = None  # every call's recognitions, on threads of their own
    metrics: LineMetrics = field(init=False)  # what /metrics reports (telephony/metrics.py)

    def __post_init__(self) -> None:
        self.metrics = LineMetrics(
            LineReadings(
                calls_in_progress=lambda: len(self.active_calls),
                # read only at a scrape, which the app serves after start_writer()
                journal_backlog=lambda: self.writer.pending,
                store_outage=lambda: self.writer.outage_since is not None,
                rasa_failovers=lambda: self.rasa.failovers,
                recognitions_waiting=lambda: self.recognitions.waiting if self.recognitions else 0,
                recognitions_hurried=lambda: self.recognitions.hurried if self.recognitions else 0,
            )
        )

    def start_writer(self) -> None:
        """Start the journaled store writer: first what an earlier run of this gateway left unstored, then the calls
        that run held are marked interrupted."""
        worker_name = re.sub(r"[^A-Za-z0-9_.-]", "_", self.worker)
        self.writer = StoreWriter(self.store, self.settings.data_dir / "journal" / f"store-{worker_name}.jsonl")
        self.writer.start()
        self.writer.put(InterruptedMarked(self.worker))

    def call_parts(self) -> CallParts:
        """What each call of this line is given."""
        settings = self.settings
        return CallParts(
            asr=self.asr,
            asr_engine=settings.asr.engine,
            voice=self.tts,
            dialogue=self.rasa,
            ready=self.ready,
            spoken=settings.spoken,
            vad=settings.vad,
            turn_taking=settings.turn_taking,
            keypad=self.keypad,
            smalltalk=self.smalltalk,
            recognition=self.recognition,
            repair=self.repair,
            end_of_turn=self.end_of_turn,
            end_of_turn_settings=settings.end_of_turn,
            speech_detector=self._speech_detector(),
            recognitions=self.recognitions,
            recording=settings.recording.enabled,
        )

    def _speech_detector(self) -> Callable[[], SpeechDetector] | None:
        silero, threshold = self.silero, self.settings.vad.silero_threshold
        return (lambda: silero.detector(threshold)) if silero is not None else None

    def keep(self, record: CallRecord) -> None:
        self.calls[record.call_sid] = record
        while len(self.calls) > KEPT_CALL_RECORDS:
            self.calls.popitem(last=False)


def media_stream_url(settings: Settings) -> str:
    parts = urlsplit(settings.public_base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + MEDIA_PATH, "", ""))


def public_url(settings: Settings, path: str) -> str:
    """``path`` on the base URL Twilio reaches us at (what its signatures are computed over)."""
    return settings.public_base_url + path


def voice_webhook_url(settings: Settings) -> str:
    return public_url(settings, VOICE_PATH)


def line_vocabulary(settings: Settings) -> AsrVocabulary | None:
    """The agency's words for biasing and repair in the line's language; None when neither is on, or when the
    language has no biasing data (nlu/asr_context.yml: English only so far), which is logged, not fatal."""
    if not (settings.asr.biasing or settings.asr.key_word_repair):
        return None
    vocabulary = AsrVocabulary.load_if_any(settings.asr.language)
    if vocabulary is None:
        log.warning(
            "no biasing data for language %r in nlu/asr_context.yml: recognition unbiased, no key-word repair",
            settings.asr.language,
        )
    return vocabulary


def build_line(settings: Settings) -> Line:
    """Load the models and open the call store (slow: run it off the event loop)."""
    queue_table = QueueTable.load(settings.twilio.queues_file)  # a broken table stops the start, not a call
    routing = RoutingTable.load()
    vocabulary = line_vocabulary(settings)
    call_control = (
        CallControl(settings.twilio, settings.twilio_auth_token, queue_table) if settings.twilio.account_sid else None
    )
    # The end-of-turn and VAD models first: a missing or corrupt file stops the start with one line naming it.
    end_of_turn = create_end_of_turn(settings.end_of_turn)
    silero = SileroModel() if settings.vad.detector == "silero" else None
    asr, recognisers = line_recognisers(settings)
    tts: FallbackTts = create_tts(settings.tts, cache_root=settings.data_dir / "voice-cache")
    # Made before any drill can touch the voice: a fault needs them, and so does a line too busy to synthesise in time.
    say = settings.spoken.prompts
    ready = ReadyAudio(tts.telephone(say.apology), tts.telephone(say.holding), tts.telephone(say.too_slow))
    drills = None
    if settings.gateway.fault_drills:
        drills = Drills()
        asr, tts = DrillAsr(asr, drills), DrillTts(tts, drills)  # type: ignore[assignment]
        recognisers = [DrillAsr(r, drills) for r in recognisers]  # type: ignore[misc]
        log.warning("fault drills are enabled (HELPLINE_GATEWAY__FAULT_DRILLS): not for a production line")
    return Line(
        drills=drills,
        store=CallStore.open(settings.database),
        queue_table=queue_table,
        vocabulary=routing,
        call_control=call_control,
        worker=f"{socket.gethostname()}:{settings.gateway.port}",
        settings=settings,
        asr=asr,
        tts=tts,
        rasa=RasaClient(settings.rasa.url, settings.rasa.timeout_s, settings.rasa.backup_urls),
        ready=ready,
        validator=RequestValidator(settings.twilio_auth_token),
        calls=OrderedDict(),
        keypad=KeypadMenu.of(routing, settings.spoken) if settings.turn_taking.keypad else None,
        # Small talk (greet, thanks, yes, no ...) is not worth reading back when heard uncertainly.
        smalltalk=frozenset(routing.smalltalk),
        recognition=vocabulary if settings.asr.biasing else None,
        repair=vocabulary if settings.asr.key_word_repair else None,
        end_of_turn=end_of_turn,
        silero=silero,
        recognitions=RecognitionQueue(recognisers),
    )


def line_recognisers(settings: Settings) -> tuple[Recogniser, list[Recogniser]]:
    """The line's engine (what a call asks of it: capabilities, streaming) and the recognisers its recognition queue
    runs: ``ASR__WORKERS`` processes of their own (``ASR__PROCESSES``), or the engine that many times in this process.
    An engine that cannot load stops the start with one line naming why."""
    if settings.asr.processes and not asr_engine_class(settings.asr.engine).capabilities.streaming_partials:
        processes = [RecogniserProcess(settings.asr, f"recogniser-{i}") for i in range(settings.asr.workers)]
        try:
            for process in processes:  # loading at once, waited for in turn
                process.wait_ready()
        except AsrError:
            for process in processes:
                process.close()
            raise
        return processes[0], list(processes)
    asr = create_asr(settings.asr)
    return asr, [asr] * settings.asr.workers


def prewarm_voice(line: Line) -> None:
    """Synthesise every fixed sentence into the voice's cache (prompts, menu, answers, responses)."""
    texts = [line.keypad.menu_text()] if line.keypad else []
    texts += line.settings.spoken.fixed_prompts
    sentences = {*fixed_sentences(line.settings.spoken), *(s for text in texts for s in split_sentences(text))}
    for sentence in sorted(sentences):
        try:
            line.tts.telephone(sentence)
        except TtsError as e:  # the call will meet it again and fall back; nothing to do here
            log.warning("could not synthesise %r in advance: %s", sentence, e)
    line.voice_warm.set()
    log.info("voice cache warm: %d sentences", len(sentences))


def stream_token(line: Line, call_sid: str) -> str:
    """What the voice webhook gives Twilio to send back in the stream's `start`: a keyed hash of the call id."""
    key = line.settings.twilio_auth_token.encode()
    return hmac.new(key, f"stream:{call_sid}".encode(), hashlib.sha256).hexdigest()[:32]


async def call_seen(line: Line, call_sid: str) -> bool:
    """Whether this call has already had a media stream here or in the shared store (a replay); an unreachable
    store is not a reason to refuse a caller, so then only this gateway's memory counts."""
    if call_sid in line.calls:
        return True
    try:
        row = await asyncio.wait_for(asyncio.to_thread(line.store.call, call_sid), timeout=2.0)
    except (SQLAlchemyError, TimeoutError):
        return False
    return row is not None
