"""The FastAPI app factory: the API alone. ``app.main.build_app`` adds the browser UI.

The lifespan builds the container, runs the database migrations (a start-up
step, never at import) and starts the ingestion workers; shutting down stops them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import storable_params
from app.api.routes import (
    admin,
    auth,
    chat,
    collections,
    health,
    models,
    openai_compat,
    search,
)
from app.api.schemas import COMMON_ERRORS
from app.api.security import SameOriginWrites, SecurityHeaders, send_error
from app.container import Container
from app.environment import apply_defaults
from app.errors import install_error_handlers
from app.settings import Settings, get_settings

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
DESCRIPTION = """Lantern answers questions from your company's documents, with citations
you can check.

Authenticate with the session cookie from `POST /api/v1/auth/login`, or with an API
key: `Authorization: Bearer lk_...` (or `X-API-Key`). Every search and answer sees
only the collections the caller may read.

Errors have one shape: `{"error": {"code": "...", "message": "..."}}`."""


def create_app(
    settings: Settings | None = None,
    *,
    container: Container | None = None,
    extend: Callable[[FastAPI], FastAPI] | None = None,
) -> FastAPI:
    """The API. Pass ``container`` to share one (tests); else one is built from
    ``settings`` (default: the environment) when the app starts. ``extend`` adds
    routes behind the same protections (headers, body limit, same-origin writes)."""
    apply_defaults()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        c = container or Container(settings or get_settings())
        c.settings.check_secrets()
        if c.settings.env == "prod" and c.settings.server.metrics_token is None:
            log.warning("/metrics answers anyone: set LANTERN_SERVER__METRICS_TOKEN")
        c.migrate()
        # Built now: a Redis URL without the redis client fails the start, not a question.
        _ = c.answer_cache
        c.ingestion.start(serving=True)
        app.state.container = c
        try:
            yield
        finally:
            if container is None:
                c.close()

    s = container.settings if container else (settings or get_settings())
    app = FastAPI(
        title="Lantern",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        dependencies=[Depends(storable_params)],
    )
    install_error_handlers(app)
    for router in (
        auth.router,
        collections.router,
        collections.docs_router,
        chat.router,
        search.router,
        admin.router,
        models.router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=COMMON_ERRORS)
    app.include_router(health.router)
    app.include_router(openai_compat.router, responses=COMMON_ERRORS)
    if s.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=s.server.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    if extend is not None:
        app = extend(app)
    app.add_middleware(BodyLimit, max_bytes=s.server.max_request_mb * 1024 * 1024)
    app.add_middleware(SameOriginWrites, allowed_origins=s.server.cors_origins)
    app.add_middleware(RequestMetrics)
    app.add_middleware(SecurityHeaders, hsts=s.secure_cookies)
    return app


class RequestMetrics:
    """Latency of every request to the end of its body (streams included), by route
    template, method and status; 5xx responses are also counted as errors."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observing(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observing)
        finally:
            state = scope.get("app")
            container = getattr(getattr(state, "state", None), "container", None)
            if container is not None:
                m = container.metrics
                template = _route_template(scope)
                m.requests.labels(scope["method"], template, str(status)).observe(
                    time.perf_counter() - started
                )
                if status >= 500:
                    m.errors.labels("http", str(status)).inc()


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while
    reading (a chunked upload without a length)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen = 0
        too_big = False

        async def limited() -> Message:
            nonlocal seen, too_big
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_big = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send) -> None:
        mb = self.max_bytes // (1024 * 1024)
        await send_error(
            send,
            413,
            "payload_too_large",
            f"request body over the {mb} MB limit (LANTERN_SERVER__MAX_REQUEST_MB)",
        )


def _route_template(scope: Scope) -> str:
    """The matched route's path template ("/api/v1/chats/{chat_id}"): no ids in labels."""
    path = getattr(scope.get("route"), "path", None)
    if not path:
        return "unmatched"
    # Routes of an included router may report their path without the router's prefix.
    if scope["path"].startswith(API_PREFIX) and not path.startswith(API_PREFIX):
        path = API_PREFIX + path
    return str(path)
