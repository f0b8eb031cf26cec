"""The web pages served by the gateway: login/logout and the agent screen (the handoff packet of a routed call).

Sessions are server-side (the cookie holds a random token; the store keeps its hash), expire, and every form
carries a CSRF token: the session's own once logged in, a double-submit cookie on the login form.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from analytics.audit import Access, AuditUnavailable, record_access
from analytics.auth import Accounts, LoginFailed, LoginThrottle, SignedIn
from analytics.live import LiveRules
from analytics.store import CALL_ID_PATTERN, CallStore, utcnow
from foundation.plain_words import count, local_time, times

log = logging.getLogger(__name__)

SESSION_COOKIE = "helpline_session"
LOGIN_CSRF_COOKIE = "helpline_login_csrf"
AGENT_ROLES = frozenset({"agent", "supervisor", "admin"})

templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))


@pass_context
def _when(context: Any, value: Any, seconds: bool = False) -> str:
    """``{{ call.started_at|when }}``: a stored UTC time as the agency reads it ("3 Dec 2026, 17:49 CET")."""
    return local_time(value, context.get("zone") or UTC, seconds)


templates.env.filters.update(when=_when, count=count, times=times)


@dataclass
class WebContext:
    store: CallStore
    accounts: Accounts
    secure_cookies: bool  # set when the public URL is https
    baseline_aht_s: float | None = None  # people-only average handling time the dashboard compares with
    nlu_dir: Path | None = None  # the training data the review queue adds examples to
    domain_file: Path | None = None
    zone: tzinfo = UTC  # the agency's time zone: every time on a page is shown in it
    live_rules: LiveRules = field(default_factory=lambda: LiveRules(frozenset(), 300.0))  # the live view's alerts
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    _encoder: Any = None

    def encoder(self) -> Any:
        """The NLU pipeline's sentence encoder (loaded on first use: only the review queue needs it)."""
        if self._encoder is None:
            from nlu.sentence_encoder import SentenceEncoder

            self._encoder = SentenceEncoder()
        return self._encoder


def web_context(request: Request) -> WebContext:
    return request.app.state.web  # type: ignore[no-any-return]


def private_headers(response: Response) -> Response:
    """Pages show personal data: never cached, never framed."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    return response


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """A template rendered with the private-page headers."""
    context = {"zone": web_context(request).zone, **context}
    return private_headers(templates.TemplateResponse(request, template, context, status_code=status_code))


def _safe_next(target: str) -> str:
    """Only a path on this site (no open redirect to another host)."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/agent/calls"


async def signed_in(request: Request) -> SignedIn | None:
    return await asyncio.to_thread(web_context(request).accounts.session, request.cookies.get(SESSION_COOKIE))


class SignInRequired(Exception):
    """A page needs a signed-in user: the browser is sent to the login page, and back here after it."""


class RoleNotAllowed(Exception):
    """The signed-in user's role cannot open this page."""

    def __init__(self, user: SignedIn):
        super().__init__(user.role)
        self.user = user


async def sign_in_first(request: Request, exc: Exception) -> Response:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


async def not_allowed(request: Request, exc: Exception) -> Response:
    user = exc.user if isinstance(exc, RoleNotAllowed) else None
    return page(
        request, "message.html", 403, user=user, heading="Not allowed", message="Your role cannot open this page."
    )


async def audit_unavailable(request: Request, exc: Exception) -> Response:
    return page(
        request, "message.html", 503, user=None, heading="Not shown",
        message="This page shows callers' data, and who opens it must be recorded first: the record could not be "
        "written just now. Try again in a moment.",
    )  # fmt: skip


# What the app installs (helpline/app.py) so that a page's user dependency can answer with a page.
PAGE_EXCEPTION_HANDLERS = {
    SignInRequired: sign_in_first,
    RoleNotAllowed: not_allowed,
    AuditUnavailable: audit_unavailable,
}


async def audited(
    request: Request, user: SignedIn, action: str, call_sid: str | None = None, subject: str = ""
) -> None:
    """Record that ``user`` opens callers' data, before it is read (analytics/audit.py); a view that cannot be
    recorded raises AuditUnavailable and is not shown."""
    address = request.client.host if request.client else "unknown"
    access = Access(user.username, user.role, action, address, call_sid, subject)
    try:
        await asyncio.to_thread(record_access, web_context(request).store, access)
    except AuditUnavailable:
        log.error("access by %s to %s not recorded: the store is out of reach; not shown", user.username, action)
        raise


def user_with_role(roles: frozenset[str]) -> Callable[[Request], Awaitable[SignedIn]]:
    """A dependency: the signed-in user, if their role is one of ``roles``."""

    async def current_user(request: Request) -> SignedIn:
        user = await signed_in(request)
        if user is None:
            raise SignInRequired()
        if user.role not in roles:
            raise RoleNotAllowed(user)
        return user

    return current_user


AgentUser = Annotated[SignedIn, Depends(user_with_role(AGENT_ROLES))]


router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/agent/calls") -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, "login.html", csrf_token=token, next=_safe_next(next), error=None, user=None)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=web_context(request).secure_cookies,
        max_age=3600,
    )
    return response


@router.post("/login")
async def login(
    request: Request,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf_token: Annotated[str, Form(max_length=128)],
    next: Annotated[str, Form(max_length=512)] = "/agent/calls",
) -> Response:
    web = web_context(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        raise HTTPException(status_code=403, detail="the login form expired; reload the page")
    address = request.client.host if request.client else "unknown"
    wait_s = web.throttle.retry_after_s(address)
    if wait_s:
        log.warning("login refused: too many failed logins from %s", address)
        raise HTTPException(
            status_code=429,
            detail=f"too many failed logins from this address; try again in {wait_s} s",
            headers={"Retry-After": str(wait_s)},
        )
    try:
        token, user = await asyncio.to_thread(web.accounts.login, username, password)
    except LoginFailed as e:
        web.throttle.failed(address)
        return page(request, "login.html", 401, csrf_token=expected, next=_safe_next(next), error=str(e), user=None)
    response = RedirectResponse(_safe_next(next), status_code=303)
    max_age = int((user.expires_at - utcnow()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="strict", secure=web.secure_cookies, max_age=max_age
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
async def logout(request: Request, csrf_token: Annotated[str, Form(max_length=128)]) -> Response:
    user = await signed_in(request)
    token = request.cookies.get(SESSION_COOKIE)
    if user is None or token is None:
        return RedirectResponse("/login", status_code=303)
    if not hmac.compare_digest(user.csrf_token, csrf_token):
        raise HTTPException(status_code=403, detail="invalid form token")
    await asyncio.to_thread(web_context(request).accounts.logout, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/agent/calls", response_class=HTMLResponse)
async def agent_calls(request: Request, user: AgentUser) -> Response:
    await audited(request, user, "routed_calls")
    rows = await asyncio.to_thread(web_context(request).store.routed_calls)
    calls = [
        {
            "call_sid": row.call_sid,
            "queue": row.queue,
            "caller": row.caller,
            "handed_off_at": (row.packet or {}).get("handed_off_at", ""),
            "summary": (row.packet or {}).get("summary", ""),
            "flags": [name for name, on in ((row.packet or {}).get("flags") or {}).items() if on],
        }
        for row in rows
    ]
    return page(request, "agent_calls.html", user=user, calls=calls)


@router.get("/agent/calls/{call_id}", response_class=HTMLResponse)
async def agent_call(request: Request, call_id: str, user: AgentUser) -> Response:
    store = web_context(request).store
    if CALL_ID_PATTERN.match(call_id):
        await audited(request, user, "packet", call_id)
    row = await asyncio.to_thread(store.call, call_id) if CALL_ID_PATTERN.match(call_id) else None
    if row is None or row.packet is None:
        return page(
            request, "message.html", 404, user=user, heading="No such call", message="No routed call has this id."
        )
    events = await asyncio.to_thread(store.task_events, call_id)
    return page(request, "agent_call.html", user=user, packet=row.packet, events=events)
