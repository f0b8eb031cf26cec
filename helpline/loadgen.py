"""Simulated callers for the benchmarks and the scale-out test: Piper-voiced callers placed through the real stack
over Twilio's Media Streams protocol, with what it takes to summarise them (latency percentiles, calls held) and to
watch the servers while they run (CPU, memory, open files, threads, asyncio tasks)."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from foundation.settings import Settings
from telephony.softphone import Softphone, SoftphoneError
from voice.codecs import TELEPHONE_RATE, read_audio
from voice.line_conditions import noise_alone, seed_of

CALLERS = (
    ("When will my parental benefit be paid this month?", "Okay, what are your opening hours?"),
    ("What are your opening hours?", "How do I report a new bank account?"),
    ("How do I apply for housing allowance?", "Thank you, goodbye."),
    ("How do I report a new bank account?", "Which documents do I need to send?"),
    ("I can't log in to the website with my e-ID.", "How long does a decision take?"),
)


# Callers who first say something real people recorded (../shared/audio/real), none of it about the agency: the
# assistant says what it can help with, and the caller asks a question of the line.
REAL_SPEECH_CALLERS = (
    ("ps_librivox_0890", "What are your opening hours?"),
    ("ps_goforward", "How do I apply for housing allowance?"),
)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def caller_audio(real_speech: bool = False) -> list[tuple[np.ndarray, ...]]:
    """Each caller's turns at the phone line's rate, said by Piper a little slower than the assistant; with
    ``real_speech``, also the callers of REAL_SPEECH_CALLERS, whose first turn is a real recording."""
    from voice.caller_voices import piper_caller
    from voice.recordings import real_recordings

    voice = piper_caller()
    callers = [tuple(voice.synthesize(t).samples_at(TELEPHONE_RATE) for t in turns) for turns in CALLERS]
    if real_speech:
        recordings = real_recordings()
        for stem, question in REAL_SPEECH_CALLERS:
            heard = read_audio(recordings[stem][0], TELEPHONE_RATE)
            callers.append((heard, voice.synthesize(question).samples_at(TELEPHONE_RATE)))
    return callers


def noise_for_lines(spec: str, callers: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """A minute of the noise ``spec`` names, ``KIND:SNR`` (pink, street, babble or hiss; dB under the callers'
    voiced speech, e.g. ``pink:15``), for the callers' lines (voice/line_conditions.py, G.711)."""
    kind, _, snr = spec.partition(":")
    try:
        snr_db = float(snr)
    except ValueError:
        raise ValueError(f"line noise {spec!r}: KIND:SNR, e.g. pink:15") from None
    speech = np.resize(np.concatenate([turn for turns in callers for turn in turns]), TELEPHONE_RATE * 60)
    return noise_alone(kind, speech, seed_of("line noise", spec)) * np.float32(10 ** (-snr_db / 20))


async def place_call(
    settings: Settings | list[Settings],
    turns: tuple[np.ndarray, ...],
    first: int = 0,
    line_noise: np.ndarray | None = None,
) -> dict[str, Any]:
    """One call; a call that breaks off is a result ("dropped"), not an exception. Given several gateways, the call
    goes to gateway ``first`` or, if that one cannot be reached at all, to the next (as a load balancer's health
    check would send it). ``line_noise``: under all the caller sends (Softphone)."""
    gateways = settings if isinstance(settings, list) else [settings]
    call_sid = "CA" + uuid.uuid4().hex
    error: Exception | None = None
    for attempt in range(len(gateways)):
        gateway = gateways[(first + attempt) % len(gateways)]
        try:
            phone = Softphone(gateway, line_noise=line_noise)
            result = (await phone.call(list(turns), call_sid=call_sid)).as_dict()
            return result | {"gateway": gateway.gateway.port}
        except SoftphoneError as e:
            error = e
            if "cannot reach the gateway" not in str(e):
                break  # it reached a gateway and broke off there: dropped
        except Exception as e:
            error = e
            break
    port = gateway.gateway.port
    return {"call_sid": call_sid, "error": repr(error), "turns": [], "outcome": "dropped", "gateway": port}


async def place_calls(
    settings: Settings | list[Settings],
    callers: list[tuple[np.ndarray, ...]],
    n: int,
    at_once: int,
    line_noise: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """``n`` calls, ``at_once`` at a time, each started within a second of the previous one (callers do not all
    dial on the same millisecond). Given several gateways, calls go to them in turn, as a load balancer would."""
    gateways = settings if isinstance(settings, list) else [settings]
    semaphore = asyncio.Semaphore(at_once)
    rng = random.Random(7)

    async def one(i: int) -> dict[str, Any]:
        await asyncio.sleep(rng.uniform(0, 1.0) * (i % at_once))
        async with semaphore:
            return await place_call(gateways, callers[i % len(callers)], first=i, line_noise=line_noise)

    return await asyncio.gather(*(one(i) for i in range(n)))


def peak_overlap(results: list[dict[str, Any]]) -> int:
    """The most calls that were in progress at the same moment (from the gateway's start and end times)."""
    edges = []
    for r in results:
        if r.get("started_at") and r.get("ended_at"):
            edges += [(datetime.fromisoformat(r["started_at"]), 1), (datetime.fromisoformat(r["ended_at"]), -1)]
    peak = now = 0
    for _, step in sorted(edges):
        now += step
        peak = max(peak, now)
    return peak


def summarise(results: list[dict[str, Any]], silence_ms: int) -> dict[str, Any]:
    turns = [t for r in results for t in r["turns"] if t.get("transcript")]
    latency = [t["latency_ms"] for t in turns if t["latency_ms"] is not None]
    net = [v - silence_ms for v in latency]
    return {
        "calls": len(results),
        "peak": peak_overlap(results),
        "dropped": sum(1 for r in results if r.get("outcome") in ("dropped", "failed")),
        "turns": len(turns),
        "unanswered_turns": sum(1 for t in turns if t["latency_ms"] is None or t["error"]),
        # Turns whose caller heard "One moment, please." before the reply (the gaps above run to the reply itself).
        "held_turns": sum(1 for t in turns if t.get("holding_ms") is not None),
        "p50": percentile(net, 50),
        "p95": percentile(net, 95),
        "p99": percentile(net, 99),
        "p95_with_silence": percentile(latency, 95),
        # What the caller feels: end of their speech -> first reply audio, endpointing included.
        "felt_p50": percentile(latency, 50),
        "felt_p95": percentile(latency, 95),
        "felt_p99": percentile(latency, 99),
        "asr_ms": statistics.mean(t["server"]["asr_ms"] for t in turns) if turns else float("nan"),
        "nlu_ms": statistics.mean(t["server"]["nlu_ms"] for t in turns) if turns else float("nan"),
        "tts_ms": statistics.mean(t["server"]["tts_ms"] for t in turns) if turns else float("nan"),
        "speculated": sum((r.get("speculations") or {}).get("started", 0) for r in results),
        "speculation_used": sum((r.get("speculations") or {}).get("used", 0) for r in results),
        "speculation_declined": sum((r.get("speculations") or {}).get("declined", 0) for r in results),
    }


@dataclass
class ProcessSample:
    rss_mb: float
    fds: int
    threads: int
    cpu_s: float  # user + system CPU seconds since the process started


def sample_process(pid: int) -> ProcessSample | None:
    """Read from /proc (Linux): resident memory, open file descriptors, threads, CPU time. None once it is gone."""
    proc = Path(f"/proc/{pid}")
    try:
        status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        fds = len(os.listdir(proc / "fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return ProcessSample(
        rss_mb=int(status["VmRSS"].split()[0]) / 1024,
        fds=fds,
        threads=int(status["Threads"]),
        cpu_s=(int(fields[11]) + int(fields[12])) / ticks,  # utime, stime (fields 14 and 15 of stat)
    )


def child_pids(pid: int) -> list[int]:
    """The processes ``pid`` started (Linux /proc), e.g. a gateway's recognisers; [] once it is gone."""
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return sorted({int(c) for t in tasks for c in (t / "children").read_text().split()})
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return []


@dataclass
class Watch:
    """Samples named processes (and the gateways' own counters) every ``every_s`` while a load runs."""

    pids: dict[str, int]
    gateways: list[str]  # base URLs whose /healthz reports calls in progress and asyncio tasks
    every_s: float = 5.0
    samples: list[dict[str, Any]] = field(default_factory=list)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                row: dict[str, Any] = {"t": loop.time() - start}
                for name, pid in self.pids.items():
                    row[name] = sample_process(pid)
                for url in self.gateways:
                    try:
                        row[url] = (await http.get(f"{url}/healthz")).json()
                    except (httpx.HTTPError, ValueError):
                        row[url] = None
                self.samples.append(row)
                await asyncio.sleep(self.every_s)
