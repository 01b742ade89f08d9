"""The log-in page, log-out, and the redirects around the Gradio UI.

Plain HTML with inline CSS and script: nothing is fetched from other sites. The
page's Content-Security-Policy allows exactly that inline script and style (by
hash) and nothing else, so an injected tag could not run even if one got in.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.api.deps import SESSION_COOKIE

router = APIRouter(include_in_schema=False)

UI_PATH = "/ui"

#: Where a browser lands when ``next`` is missing or would leave this site.
DEFAULT_NEXT = UI_PATH + "/"

#: What the WHATWG URL parser strips before parsing (C0 controls and space at
#: the ends) and removes anywhere (ASCII tab and newlines).
_EDGES = "".join(chr(c) for c in range(0x21))
_REMOVED = re.compile("[\t\n\r]")
_BASE = ("http", "lantern.invalid")


@cache
def page() -> str:
    """The log-in page's template (read on first use, not at import)."""
    return (Path(__file__).parent / "static" / "login.html").read_text(encoding="utf-8")


def _hash_of(tag: str) -> str:
    body = re.search(rf"<{tag}>(.*?)</{tag}>", page(), re.S)
    assert body is not None, f"login.html has no <{tag}>"
    digest = hashlib.sha256(body.group(1).encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


@cache
def login_csp() -> str:
    """Only the page's own inline script and style run; it may call this origin only."""
    return (
        "default-src 'none'; "
        f"script-src {_hash_of('script')}; style-src {_hash_of('style')}; "
        "connect-src 'self'; img-src 'self'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    )


def safe_next(target: str | None) -> str:
    """``target`` as the browser will resolve it, if that stays on this site; else the UI.

    Browsers strip tabs and newlines, read ``\\`` as ``/`` and resolve ``/\\host`` or
    ``https:host`` to another site, so the check runs on the resolved URL, and the
    page is given that normalised form: what was checked is what the browser opens.
    """
    if not target:
        return DEFAULT_NEXT
    cleaned = _REMOVED.sub("", target.strip(_EDGES)).replace("\\", "/")
    if not cleaned.startswith("/") or cleaned.startswith("//"):
        return DEFAULT_NEXT
    try:
        parts = urlsplit(f"{_BASE[0]}://{_BASE[1]}{cleaned}")
    except ValueError:
        return DEFAULT_NEXT
    if (parts.scheme, parts.netloc) != _BASE or not parts.path.startswith("/"):
        return DEFAULT_NEXT
    if parts.path.startswith("//") or any(ord(ch) < 0x20 or ch == "\x7f" for ch in cleaned):
        return DEFAULT_NEXT
    return urlunsplit(("", "", parts.path, parts.query, parts.fragment))


@router.get("/login", response_class=HTMLResponse)
def login_page(next: str | None = None) -> HTMLResponse:
    # The target goes into an HTML attribute, escaped; the script reads it from the
    # DOM, so no request text is ever part of a script.
    filled = page().replace("NEXT", html.escape(safe_next(next), quote=True))
    return HTMLResponse(filled, headers={"Content-Security-Policy": login_csp()})


@router.get("/logout")
def logout(request: Request) -> RedirectResponse:
    container = request.app.state.container
    if token := request.cookies.get(SESSION_COOKIE):
        container.identity.log_out(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse(UI_PATH + "/", status_code=307)
