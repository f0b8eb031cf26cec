"""The admins' pages: the access audit trail (who opened which caller's data, when, from where)."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from analytics.audit import ACTIONS, access_trail
from analytics.auth import SignedIn
from analytics.store import CALL_ID_PATTERN
from analytics.web import page, user_with_role, web_context

AdminUser = Annotated[SignedIn, Depends(user_with_role(frozenset({"admin"})))]
PAGE_SIZE = 100

router = APIRouter()


@router.get("/admin/access", response_class=HTMLResponse)
async def access_audit(
    request: Request,
    user: AdminUser,
    username: Annotated[str, Query(alias="user", max_length=64)] = "",
    call: Annotated[str, Query(max_length=64)] = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
) -> Response:
    call = call.strip()
    problem = None
    if call and not CALL_ID_PATTERN.match(call):
        problem, call = "That is not a call id.", ""
    total, events = await asyncio.to_thread(
        access_trail, web_context(request).store, username.strip(), call, PAGE_SIZE, (page_number - 1) * PAGE_SIZE
    )
    return page(
        request,
        "admin_access.html",
        user=user,
        events=events,
        total=total,
        actions=ACTIONS,
        filters={"user": username.strip(), "call": call},
        page=page_number,
        pages=max(1, -(-total // PAGE_SIZE)),
        problem=problem,
    )
