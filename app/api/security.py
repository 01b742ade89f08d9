"""Browser-facing protections: security headers on every response, and refusing
writes that a page on another origin makes with the user's cookie (CSRF).

A write is refused when the browser says it comes from another site or origin
(``Sec-Fetch-Site``) or, for browsers that do not send that, when its ``Origin``
is not this server's; origins in ``LANTERN_SERVER__CORS_ORIGINS`` are allowed.
Tools without a browser send neither header and are not affected.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: Sent on every response. Pages that need a stricter policy set their own CSP
#: (the log-in page, stored files); everything else may not be framed by any site.
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
FRAME_CSP = (b"content-security-policy", b"frame-ancestors 'none'")
HSTS = (b"strict-transport-security", b"max-age=31536000")


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with the one JSON error shape, from a raw ASGI middleware."""
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """Add ``HEADERS`` (and HSTS when cookies are HTTPS-only) to every HTTP response,
    without replacing a header a route set itself."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.extra = (*HEADERS, FRAME_CSP, *((HSTS,) if hsts else ()))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers += [(k, v) for k, v in self.extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class SameOriginWrites:
    """Refuse state-changing requests that a browser sends from another origin."""

    def __init__(self, app: ASGIApp, *, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = {k.lower(): v for k, v in scope.get("headers") or []}
            if self._cross_origin(headers):
                await send_error(
                    send,
                    403,
                    "cross_origin",
                    "a page on another site or origin may not change anything here; "
                    "add its origin to LANTERN_SERVER__CORS_ORIGINS if it should",
                )
                return
        await self.app(scope, receive, send)

    def _cross_origin(self, headers: dict[bytes, bytes]) -> bool:
        origin = headers.get(b"origin", b"").decode("latin-1").strip().rstrip("/").lower()
        if origin and origin in self.allowed:
            return False
        site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
        if site:
            return site not in ("same-origin", "none")
        if not origin:
            return False  # not a browser, or a browser that sends no Origin on this request
        host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        return origin == "null" or urlsplit(origin).netloc != host
