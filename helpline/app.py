"""The gateway as one ASGI app: Twilio's webhooks and media streams, the call API, and the web pages, composed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from analytics import admin, api, dashboard, live_view, web
from analytics.auth import Accounts
from analytics.live import LiveRules
from foundation.routing_table import RoutingTable
from foundation.settings import Settings
from telephony import webhooks
from telephony.line import Line, build_line, media_stream_url, prewarm_voice, voice_webhook_url
from telephony.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

log = logging.getLogger(__name__)


def create_app(settings: Settings, line: Line | None = None) -> FastAPI:
    """The ASGI app. Models load at start-up (lifespan) unless a ready ``line`` is given."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        line_ = line if line is not None else await asyncio.to_thread(build_line, settings)
        app.state.line = line_
        accounts = Accounts(
            line_.store,
            session_ttl=timedelta(hours=settings.web.session_hours),
            max_failures=settings.web.login_max_failures,
            lockout=timedelta(minutes=settings.web.lockout_minutes),
        )
        app.state.web = web.WebContext(
            line_.store,
            accounts,
            settings.public_base_url.startswith("https:"),
            settings.analytics.baseline_aht_s,
            settings.nlu_data_dir,
            settings.domain_file,
            settings.zone,
            LiveRules(RoutingTable.load().urgent, settings.analytics.long_call_s),
        )
        line_.start_writer()
        if line_.call_control is None:
            log.warning("no Twilio account configured: routed calls reach their queue when the media stream ends")
        # The fixed sentences are synthesised once, in the background: a first caller should not wait for Piper.
        prewarm = asyncio.create_task(asyncio.to_thread(prewarm_voice, line_))
        log.info(
            "gateway ready: voice webhook %s, media stream %s", voice_webhook_url(settings), media_stream_url(settings)
        )
        yield
        prewarm.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await prewarm
        await line_.writer.stop()
        if line is None:
            await line_.rasa.aclose()
            line_.store.close()
            if line_.recognitions is not None:
                await asyncio.to_thread(line_.recognitions.close)

    app = FastAPI(title="Helpline gateway", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each bad field and why, without echoing what was sent (it may be an attack or personal data)."""
        problems = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.get("/healthz")
    async def healthz(line_: webhooks.CurrentLine) -> dict[str, Any]:
        return {
            "status": "ok",
            "asr": line_.settings.asr.engine,
            "tts": line_.tts.primary.name,
            "voice_cache": "warm" if line_.voice_warm.is_set() else "warming",
            "calls_in_progress": len(line_.active_calls),
            "tasks": len(asyncio.all_tasks()),
            "store_writes_waiting": line_.writer.pending,
            "recognitions_hurried": line_.recognitions.hurried if line_.recognitions else 0,
        }

    @app.get("/metrics")
    async def metrics(line_: webhooks.CurrentLine) -> Response:
        """Prometheus' scrape: numbers the gateway already holds, nothing personal (telephony/metrics.py)."""
        return Response(line_.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    for exception, handler in web.PAGE_EXCEPTION_HANDLERS.items():
        app.add_exception_handler(exception, handler)
    for router in (web.router, dashboard.router, live_view.router, admin.router, api.router, webhooks.router):
        app.include_router(router)
    return app
