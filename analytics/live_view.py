"""The supervisors' live view: calls in progress, calls waiting per queue and alerts, updating in the browser without
a reload. The page is whole without script (a link refreshes it); with script, /dashboard/live/events (server-sent
events) sends the rendered panel every few seconds and a small script of our own puts it in place."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from analytics import live
from analytics.dashboard import DashboardUser, from_store
from analytics.web import page, private_headers, templates, web_context

EVERY_S = 3.0  # how often an open live view is sent the line's state
# A stream ends after this and the browser's EventSource opens another: an open live view never holds a stopping
# gateway for longer.
STREAM_FOR_S = 60.0
SCRIPT = (Path(__file__).with_name("static") / "live.js").read_text()
# The live page alone runs a script: its own, from this site, which may only open the event stream.
LIVE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; form-action 'self'"

router = APIRouter()


async def _state(request: Request) -> dict[str, Any]:
    rules = web_context(request).live_rules
    return await from_store(request, lambda db: live.snapshot(db, datetime.now(UTC), rules))


def _panel(request: Request, state: dict[str, Any]) -> str:
    template = templates.env.get_template("_live_panel.html")
    return template.render(live=state, zone=web_context(request).zone)


@router.get("/dashboard/live", response_class=HTMLResponse)
async def live_page(request: Request, user: DashboardUser) -> Response:
    state = await _state(request)
    response = page(request, "dashboard_live.html", user=user, live=state)
    response.headers["Content-Security-Policy"] = LIVE_POLICY
    return response


@router.get("/dashboard/live/events")
async def live_events(request: Request, user: DashboardUser) -> Response:
    """Server-sent events: the rendered panel (``event: panel``) every EVERY_S seconds while the page is open."""

    async def stream() -> AsyncIterator[str]:
        ends = time.monotonic() + STREAM_FOR_S
        yield f"retry: {int(EVERY_S * 1000)}\n\n"
        while time.monotonic() < ends and not await request.is_disconnected():
            state = await _state(request)
            html = _panel(request, state)
            yield "event: panel\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n"
            await asyncio.sleep(EVERY_S)

    return private_headers(StreamingResponse(stream(), media_type="text/event-stream"))


@router.get("/static/live.js")
async def live_script() -> Response:
    response = Response(SCRIPT, media_type="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
