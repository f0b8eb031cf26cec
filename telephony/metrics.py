"""What a gateway tells the monitoring: Prometheus metrics, served at ``/metrics`` (README "Operations").

Counters and histograms are updated as calls end and turns are decided; gauges (calls in progress, the store journal's
backlog, a store outage, Rasa fail-overs) are read from the line when Prometheus scrapes, so a scrape only reads numbers
the gateway already holds and never waits for a call, the store or Rasa. Every label is a domain id or a fixed word
(never a caller's words or number), so no personal data reaches the monitoring and the series stay few.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from telephony.call_record import FAULT_EVENT, HOLDING_EVENT, TAKEN_BACK_EVENT, CallRecord, TurnRecord

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds. The felt gap's buckets bracket what the README measures (0.3-2 s) and the targets (0.45/0.7/1.2 s).
GAP_BUCKETS = (0.2, 0.3, 0.45, 0.6, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0)
PART_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0)


@dataclass(frozen=True)
class LineReadings:
    """How the gateway's live numbers are read at scrape time."""

    calls_in_progress: Callable[[], int]
    journal_backlog: Callable[[], int]
    store_outage: Callable[[], bool]
    rasa_failovers: Callable[[], int]
    recognitions_waiting: Callable[[], int]
    recognitions_hurried: Callable[[], int]


class _Readings(Collector):
    def __init__(self, readings: LineReadings):
        self._readings = readings

    def collect(self) -> Iterator[Metric]:
        r = self._readings
        yield GaugeMetricFamily(
            "helpline_calls_in_progress", "Calls with a live media stream on this gateway", value=r.calls_in_progress()
        )
        yield GaugeMetricFamily(
            "helpline_store_journal_backlog",
            "Call-store writes journaled and not yet stored (grows while the database is unreachable)",
            value=r.journal_backlog(),
        )
        yield GaugeMetricFamily(
            "helpline_store_outage",
            "1 while the call store cannot be reached (writes wait in the journal)",
            value=1 if r.store_outage() else 0,
        )
        yield GaugeMetricFamily(
            "helpline_recognitions_waiting",
            "Recognitions queued for a recogniser (the line is behind while this stays above zero)",
            value=r.recognitions_waiting(),
        )
        yield CounterMetricFamily(
            "helpline_recognitions_hurried",
            "Recognitions made with the shorter encoder window because others were waiting (ASR__WINDOW_UNDER_LOAD_S)",
            value=r.recognitions_hurried(),
        )
        yield CounterMetricFamily(
            "helpline_rasa_failovers",
            "Times this gateway moved to another Rasa server because its server refused connections",
            value=r.rasa_failovers(),
        )


def _kind(text: str) -> str:
    return text.partition(":")[0]


class LineMetrics:
    """One gateway's metrics, in a registry of its own (several gateways may share a test process)."""

    def __init__(self, readings: LineReadings):
        # Not auto_describe: the live readings are read only when scraped (the store writer starts after the line).
        self.registry = CollectorRegistry()
        self.registry.register(_Readings(readings))
        r = self.registry
        self.calls = Counter(
            "helpline_calls_ended",
            "Calls ended, by outcome (answered, routed, failed, abandoned) and its topic or queue",
            ["outcome", "target"],
            registry=r,
        )
        self.turns = Counter(
            "helpline_turns",
            "Caller turns decided, by the kind of decision (answer, route, smalltalk, clarify, confirm)",
            ["kind"],
            registry=r,
        )
        self.faults = Counter(
            "helpline_faults",
            "Faults that ended a call in an apology and a handoff, by the part that failed",
            ["part"],
            registry=r,
        )
        self.holding = Counter(
            "helpline_holding_phrases",
            "Turns whose reply was slow enough that the caller heard the holding phrase (TURN_TAKING__HOLD_AFTER_S)",
            registry=r,
        )
        self.taken_back = Counter(
            "helpline_replies_taken_back",
            "Decisions whose reply was taken back because the caller went on with their turn (each is also counted in"
            " helpline_turns, as is the decision on the whole turn that followed)",
            registry=r,
        )
        self.felt_gap = Histogram(
            "helpline_felt_gap_seconds",
            "From the end of the caller's speech to the first reply audio sent (endpointing included)",
            buckets=GAP_BUCKETS,
            registry=r,
        )
        self.part_time = Histogram(
            "helpline_part_seconds",
            "Time of each part of a turn: speech recognition, the dialogue, synthesis",
            ["part"],
            buckets=PART_BUCKETS,
            registry=r,
        )

    def turn_decided(self, turn: TurnRecord) -> None:
        """Counted as it is decided (before its reply is spoken, so its times are not known yet)."""
        if turn.decision:
            self.turns.labels(_kind(turn.decision)).inc()

    def call_ended(self, record: CallRecord) -> None:
        """The call's outcome, faults and its turns' times, now all settled."""
        outcome, _, target = record.outcome.partition(":")
        self.calls.labels(outcome or "unknown", target).inc()
        for event in record.events:
            if event.get("kind") == FAULT_EVENT:
                self.faults.labels(str(event.get("part", "unknown"))).inc()
            elif event.get("kind") == HOLDING_EVENT:
                self.holding.inc()
            elif event.get("kind") == TAKEN_BACK_EVENT:
                self.taken_back.inc()
        for turn in record.turns:
            for part, ms in (("asr", turn.asr_ms), ("nlu", turn.nlu_ms), ("tts", turn.tts_ms)):
                if ms > 0:
                    self.part_time.labels(part).observe(ms / 1000)
            if turn.response_ms > 0:
                self.felt_gap.observe((turn.endpointing_ms + turn.response_ms) / 1000)

    def exposition(self) -> bytes:
        """The text Prometheus scrapes."""
        return generate_latest(self.registry)
