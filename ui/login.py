"""The log-in page, log-out, and the redirects around the Gradio UI.

Plain HTML with inline CSS and script: nothing is fetched from other sites.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.api.deps import SESSION_COOKIE

router = APIRouter(include_in_schema=False)

UI_PATH = "/ui"

PAGE = (Path(__file__).parent / "static" / "login.html").read_text(encoding="utf-8")


def _safe_next(target: str | None) -> str:
    # Only local paths: never an open redirect to another site.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return UI_PATH + "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(next: str | None = None) -> HTMLResponse:
    import json

    target = json.dumps(_safe_next(next)).replace("<", "\\u003c")
    return HTMLResponse(PAGE.replace("NEXT", html.unescape(target)))


@router.get("/logout")
def logout(request: Request) -> RedirectResponse:
    container = request.app.state.container
    if token := request.cookies.get(SESSION_COOKIE):
        container.auth.end_session(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(UI_PATH + "/", status_code=307)
