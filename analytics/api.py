"""The call API for operators and tests on the gateway's own host: a call's record, the KPIs, expert handling time."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from analytics import kpis
from telephony.webhooks import CurrentLine, loopback_only

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", dependencies=[Depends(loopback_only)])


@router.get("/calls/{call_sid}")
async def call_record(call_sid: str, line: CurrentLine) -> JSONResponse:
    """A call this gateway holds in memory, with the experts' events from the store."""
    record = line.calls.get(call_sid)
    if record is None:
        raise HTTPException(status_code=404, detail=f"no call {call_sid}")
    try:
        events = await asyncio.to_thread(line.store.task_events, call_sid)
    except SQLAlchemyError as e:  # the record itself is in memory; the experts' events wait for the database
        log.error("call %s: expert events not readable: %s", call_sid, e)
        events = []
    expert_events = [
        {"kind": e.kind, "at": e.at.isoformat(), "source": e.source, "handled_s": e.handled_s} for e in events
    ]
    return JSONResponse(record.as_dict() | {"expert_events": expert_events})


@router.get("/kpis")
async def kpi_summary(line: CurrentLine, start: str | None = None, end: str | None = None) -> JSONResponse:
    """The line's KPIs from day ``start`` to day ``end`` (YYYY-MM-DD, both included, days of the agency's time zone;
    default the last 7 days), from the call store."""
    try:
        period = kpis.period_of(start, end, zone=line.settings.zone)
    except ValueError as e:
        raise HTTPException(status_code=400, detail=str(e)) from e

    def compute() -> dict[str, Any]:
        with line.store.sessions() as db:
            return kpis.summary(db, period, line.settings.analytics.baseline_aht_s)

    return JSONResponse(await asyncio.to_thread(compute))


@router.get("/handling")
async def handling(line: CurrentLine) -> JSONResponse:
    """Expert handling time per queue (accepted -> completed), from the call store."""
    return JSONResponse({"queues": await asyncio.to_thread(line.store.handling_by_queue)})
