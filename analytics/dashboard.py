"""The supervisors' dashboard: KPIs over a chosen period with charts, per-queue view, call list with search and
filters, call detail, CSV export. Server-rendered HTML (charts are inline SVG): no script runs in the browser."""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from analytics import drivers, kpis, quality, review, trends
from analytics.auth import SignedIn
from analytics.models import Call
from analytics.store import CALL_ID_PATTERN
from analytics.web import audited, page, private_headers, user_with_role, web_context
from foundation.plain_words import as_utc
from foundation.vocabulary import QUEUES
from nlu.training_data import known_intents
from voice.codecs import pcm_wav

DASHBOARD_ROLES = frozenset({"supervisor", "admin", "trainer"})
REVIEW_ROLES = frozenset({"trainer", "admin"})
RECORDING_ROLES = frozenset({"supervisor"})  # a caller's voice is heard by supervisors only
DashboardUser = Annotated[SignedIn, Depends(user_with_role(DASHBOARD_ROLES))]
RecordingUser = Annotated[SignedIn, Depends(user_with_role(RECORDING_ROLES))]
OUTCOME_KINDS = ("answered", "routed", "abandoned", "failed")
PAGE_SIZE = 50
CSV_LIMIT = 10_000

router = APIRouter()
T = TypeVar("T")


def _period(request: Request, start: str | None, end: str | None) -> tuple[kpis.Period, str | None]:
    """The period asked for (days of the agency's time zone), or the last 7 days and what was wrong with the dates
    given."""
    zone = web_context(request).zone
    try:
        return kpis.period_of(start, end, zone=zone), None
    except ValueError as e:
        return kpis.period_of(None, None, zone=zone), str(e)


def _described(period: kpis.Period, filters: dict[str, str], **more: str) -> str:
    """What a list showed, for the access audit: its days and filters ("2026-11-01..2026-11-07 q=housing")."""
    days = kpis.period_fields(period)
    shown = [f"{k}={v}" for k, v in {**filters, **more}.items() if v]
    return " ".join([f"{days['start']}..{days['end']}", *shown])


def bars(rows: list[dict[str, Any]], label: str, value: str, percent: bool = False) -> list[dict[str, Any]]:
    """Rows as horizontal bars: label, value shown, width 0-100."""
    values = [float(r[value] or 0) for r in rows]
    top = max(values, default=0) or 1.0
    return [
        {
            "label": str(r[label]),
            "shown": f"{v * 100:.0f}%" if percent else f"{v:g}",
            "width": round(100 * (v if percent else v / top), 1),
        }
        for r, v in zip(rows, values, strict=True)
    ]


async def from_store(request: Request, compute: Callable[[Session], T]) -> T:
    """``compute`` over a session of the call store, off the event loop."""
    store = web_context(request).store

    def run() -> T:
        with store.sessions() as db:
            return compute(db)

    return await asyncio.to_thread(run)


@router.get("/dashboard", response_class=HTMLResponse)
async def overview(request: Request, user: DashboardUser, start: str | None = None, end: str | None = None) -> Response:
    period, problem = _period(request, start, end)
    baseline = web_context(request).baseline_aht_s
    figures = await from_store(request, lambda db: kpis.summary(db, period, baseline))
    charts = {
        "calls_per_hour": bars(figures["calls_per_hour"], "bucket", "calls"),
        "containment": bars(figures["containment_by_topic"], "topic", "containment", percent=True),
        "routing": bars(
            [{"queue": f"{r['queue']}: {r['reason']}", "calls": r["calls"]} for r in figures["routing_by_queue"]],
            "queue",
            "calls",
        ),
        "repeats": bars(figures["repeat_calls_by_intent"], "intent", "repeat_rate", percent=True),
    }
    return page(
        request,
        "dashboard.html",
        user=user,
        figures=figures,
        charts=charts,
        period=kpis.period_fields(period),
        problem=problem,
        queues=QUEUES,
    )


def columns(rows: list[dict[str, Any]], value: str, percent: bool = False) -> dict[str, Any]:
    """A series as columns: each bucket's height 0-100 against the largest (a rate against 100 %), None where the
    bucket has no figure (no calls then)."""
    values = [r[value] for r in rows]
    top = 1.0 if percent else max((float(v) for v in values if v is not None), default=0.0) or 1.0
    return {
        "first": rows[0]["bucket"] if rows else "",
        "last": rows[-1]["bucket"] if rows else "",
        "top": f"{top * 100:.0f}%" if percent else f"{top:g}",
        "columns": [
            None if v is None else {"bucket": r["bucket"], "height": round(100 * float(v) / top, 1), "value": v}
            for r, v in zip(rows, values, strict=True)
        ],
    }


@router.get("/dashboard/trends", response_class=HTMLResponse)
async def trends_view(
    request: Request, user: DashboardUser, start: str | None = None, end: str | None = None, unit: str | None = None
) -> Response:
    period, problem = _period(request, start, end)
    figures = await from_store(request, lambda db: trends.trends(db, period, unit))
    series = figures["series"]
    charts = {
        "calls": columns(series, "calls"),
        "containment": columns(series, "containment", percent=True),
        "abandonment": columns(series, "abandonment", percent=True),
        "aht_s": columns(series, "aht_s"),
        "felt_gap_ms": columns(series, "felt_gap_ms"),
        "queues": {q: columns(rows, "calls") for q, rows in figures["routed_by_queue"].items()},
    }
    return page(
        request,
        "dashboard_trends.html",
        user=user,
        figures=figures,
        charts=charts,
        period=kpis.period_fields(period),
        previous=kpis.period_fields(trends.previous(period)),
        problem=problem,
        units=trends.UNITS,
    )


@router.get("/dashboard/answers", response_class=HTMLResponse)
async def answers_view(
    request: Request, user: DashboardUser, start: str | None = None, end: str | None = None
) -> Response:
    period, problem = _period(request, start, end)
    rows = await from_store(request, lambda db: quality.answer_quality(db, period))
    return page(
        request,
        "dashboard_answers.html",
        user=user,
        rows=rows,
        chart=bars(rows, "topic", "accepted_rate", percent=True),
        reactions={
            "asked_again": "asked the same again",
            "person": "asked for a person",
            "hung_up": "hung up without a word",
            "other": "something else",
        },
        period=kpis.period_fields(period),
        problem=problem,
    )


@router.get("/dashboard/drivers", response_class=HTMLResponse)
async def drivers_view(
    request: Request, user: DashboardUser, start: str | None = None, end: str | None = None
) -> Response:
    period, problem = _period(request, start, end)
    encoder = web_context(request).encoder
    await audited(request, user, "call_drivers", subject=_described(period, {}))
    found = await from_store(request, lambda db: drivers.call_drivers(db, period, encoder().encode))
    return page(
        request,
        "dashboard_drivers.html",
        user=user,
        found=found,
        charts=[columns(d["weeks"], "turns") for d in found["drivers"]],
        can_review=user.role in REVIEW_ROLES,
        period=kpis.period_fields(period),
        problem=problem,
    )


@router.get("/dashboard/queues/{queue}", response_class=HTMLResponse)
async def queue_view(
    request: Request, user: DashboardUser, queue: str, start: str | None = None, end: str | None = None
) -> Response:
    if queue not in QUEUES:
        return page(request, "message.html", 404, user=user, heading="No such queue", message="Unknown queue.")
    period, problem = _period(request, start, end)
    web = web_context(request)
    await audited(request, user, "queue_calls", subject=_described(period, {"queue": queue}))

    def compute() -> tuple[list[dict[str, Any]], list[dict[str, Any]], tuple[int, list[Call]]]:
        with web.store.sessions() as db:
            reasons = [r for r in kpis.routing_by_queue(db, period) if r["queue"] == queue]
        handling = [h for h in web.store.handling_by_queue(since=period.start) if h["queue"] == queue]
        return reasons, handling, web.store.list_calls(period.start, period.end, queue=queue, limit=PAGE_SIZE)

    reasons, handling, (total, calls) = await asyncio.to_thread(compute)
    return page(
        request,
        "dashboard_queue.html",
        user=user,
        queue=queue,
        reasons=bars(reasons, "reason", "calls"),
        handling=handling[0] if handling else None,
        calls=[_call_row(c) for c in calls],
        total=total,
        period=kpis.period_fields(period),
        problem=problem,
    )


def _call_row(call: Call) -> dict[str, Any]:
    record = call.record or {}
    turns = record.get("turns") or []
    return {
        "call_sid": call.call_sid,
        "started_at": as_utc(call.started_at),
        "caller": call.caller,
        "outcome": call.outcome or call.status,
        "queue": call.queue or "",
        "turns": len(turns),
        "first_words": next((t["transcript"] for t in turns if t.get("transcript")), ""),
    }


def _filters(request: Request) -> dict[str, str]:
    params = request.query_params
    outcome = params.get("outcome", "")
    queue = params.get("queue", "")
    return {
        "q": params.get("q", "")[:100],
        "outcome": outcome if outcome in OUTCOME_KINDS else "",
        "queue": queue if queue in QUEUES else "",
    }


@router.get("/dashboard/calls", response_class=HTMLResponse)
async def call_list(
    request: Request,
    user: DashboardUser,
    start: str | None = None,
    end: str | None = None,
    page_number: Annotated[int, Query(alias="page")] = 1,
) -> Response:
    period, problem = _period(request, start, end)
    filters = _filters(request)
    page_number = max(1, min(page_number, 10_000))
    web = web_context(request)
    await audited(request, user, "call_list", subject=_described(period, filters, page=str(page_number)))
    total, calls = await asyncio.to_thread(
        web.store.list_calls,
        period.start,
        period.end,
        filters["q"],
        filters["outcome"],
        filters["queue"],
        PAGE_SIZE,
        (page_number - 1) * PAGE_SIZE,
    )
    query = {**kpis.period_fields(period), **{k: v for k, v in filters.items() if v}}
    return page(
        request,
        "dashboard_calls.html",
        user=user,
        calls=[_call_row(c) for c in calls],
        total=total,
        page=page_number,
        pages=max(1, -(-total // PAGE_SIZE)),
        filters=filters,
        query=query,
        period=kpis.period_fields(period),
        problem=problem,
        outcomes=OUTCOME_KINDS,
        queues=QUEUES,
    )


@router.get("/dashboard/calls.csv")
async def call_list_csv(
    request: Request, user: DashboardUser, start: str | None = None, end: str | None = None
) -> Response:
    period, _ = _period(request, start, end)
    filters = _filters(request)
    web = web_context(request)
    await audited(request, user, "csv_export", subject=_described(period, filters))
    _, calls = await asyncio.to_thread(
        web.store.list_calls, period.start, period.end, filters["q"], filters["outcome"], filters["queue"], CSV_LIMIT
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["call_id", "started_at", "caller", "outcome", "queue", "turns", "first_words"])
    for row in map(_call_row, calls):
        # A cell starting with = + - @ would run as a formula in a spreadsheet: quote it as text.
        cells = [v.isoformat(timespec="seconds") if isinstance(v, datetime) else str(v) for v in row.values()]
        writer.writerow(["'" + c if c[:1] in ("=", "+", "-", "@") else c for c in cells])
    days = kpis.period_fields(period)
    name = f"helpline-calls-{days['start']}-{days['end']}.csv"
    response = Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return private_headers(response)


@router.get("/dashboard/calls/{call_id}", response_class=HTMLResponse)
async def call_detail(request: Request, user: DashboardUser, call_id: str) -> Response:
    web = web_context(request)
    if CALL_ID_PATTERN.match(call_id):
        await audited(request, user, "call_detail", call_id)
    call = await asyncio.to_thread(web.store.call, call_id) if CALL_ID_PATTERN.match(call_id) else None
    if call is None:
        return page(request, "message.html", 404, user=user, heading="No such call", message="No call has this id.")
    events = await asyncio.to_thread(web.store.task_events, call_id)
    recording = await asyncio.to_thread(web.store.recording_facts, call_id)
    record = call.record or {}
    response = page(
        request,
        "dashboard_call.html",
        user=user,
        call=_call_row(call),
        record=record,
        turns=record.get("turns") or [t.details or {} for t in await asyncio.to_thread(web.store.turns, call_id)],
        packet=call.packet,
        events=events,
        recording=recording,
        may_listen=user.role in RECORDING_ROLES,
    )
    response.headers["Content-Security-Policy"] += "; media-src 'self'"  # the recording's player
    return response


@router.get("/dashboard/calls/{call_id}/recording.wav")
async def call_recording(request: Request, user: RecordingUser, call_id: str) -> Response:
    """A call's recording as 16-bit PCM WAV (stored as mu-law), for supervisors; every listen is audited. A ``Range``
    request (the player seeking) gets that part."""
    if not CALL_ID_PATTERN.match(call_id):
        return Response("No such recording.", status_code=404, media_type="text/plain")
    web = web_context(request)
    await audited(request, user, "recording", call_id)
    stored = await asyncio.to_thread(web.store.recording, call_id)
    if stored is None:
        return private_headers(Response("No such recording.", status_code=404, media_type="text/plain"))
    wav = await asyncio.to_thread(pcm_wav, stored)
    part = _byte_range(request.headers.get("range", ""), len(wav))
    if part is None:
        response = Response(wav, media_type="audio/wav")
    else:
        first, last = part
        response = Response(wav[first : last + 1], status_code=206, media_type="audio/wav")
        response.headers["Content-Range"] = f"bytes {first}-{last}/{len(wav)}"
    response.headers["Accept-Ranges"] = "bytes"
    return private_headers(response)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one range of ``bytes=first-last`` (or ``first-``, ``-suffix``) within ``size``; None for the whole."""
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    if match is None or size == 0 or match.group(1) == match.group(2) == "":
        return None
    if match.group(1) == "":
        return max(0, size - int(match.group(2))), size - 1
    first = int(match.group(1))
    last = min(size - 1, int(match.group(2))) if match.group(2) else size - 1
    return (first, last) if first <= last else None


ReviewUser = Annotated[SignedIn, Depends(user_with_role(REVIEW_ROLES))]


@router.get("/dashboard/review", response_class=HTMLResponse)
async def review_queue(
    request: Request, user: ReviewUser, start: str | None = None, end: str | None = None
) -> Response:
    period, problem = _period(request, start, end)
    web = web_context(request)
    await audited(request, user, "review_queue", subject=_described(period, {}))

    def compute() -> tuple[list[review.ReviewGroup], list[str]]:
        with web.store.sessions() as db:
            items = review.review_items(db, period.start, period.end)
        groups = review.group_similar(items, web.encoder().encode) if items else []
        assert web.domain_file is not None
        return groups, known_intents(web.domain_file)

    groups, intents = await asyncio.to_thread(compute)
    return page(
        request,
        "dashboard_review.html",
        user=user,
        groups=groups,
        intents=intents,
        period=kpis.period_fields(period),
        problem=problem,
        done=request.query_params.get("done", "")[:200],
        error=request.query_params.get("error", "")[:300],
    )


@router.post("/dashboard/review/label")
async def review_label(
    request: Request,
    user: ReviewUser,
    call_sid: Annotated[str, Form(max_length=64)],
    turn: Annotated[int, Form(ge=1, le=10_000)],
    intent: Annotated[str, Form(max_length=64)],
    csrf_token: Annotated[str, Form(max_length=128)],
) -> Response:
    if not hmac.compare_digest(user.csrf_token, csrf_token):
        return page(request, "message.html", 403, user=user, heading="Form expired", message="Reload the page.")
    web = web_context(request)
    assert web.nlu_dir is not None and web.domain_file is not None
    try:
        written = await asyncio.to_thread(
            review.label_turn, web.store, call_sid, turn, intent.strip(), user.username, web.nlu_dir, web.domain_file
        )
    except review.ReviewError as e:
        return RedirectResponse(f"/dashboard/review?{urlencode({'error': str(e)})}", status_code=303)
    done = f"added to {intent} in {written.name}; retrain with `helpline nlu retrain`"
    return RedirectResponse(f"/dashboard/review?{urlencode({'done': done})}", status_code=303)
