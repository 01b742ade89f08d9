"""Application exceptions, and the one place they become HTTP responses.

Every error body has the same shape: ``{"error": {"code": ..., "message": ...}}``.
Messages are written for the caller; stack traces and internal details go to the
server log only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

log = logging.getLogger(__name__)


class LanternError(Exception):
    pass


class NotFound(LanternError):
    pass


class Conflict(LanternError):
    pass


class Unauthorized(LanternError):
    """No valid credentials (log in, or send an API key)."""


class PermissionDenied(LanternError):
    """Authenticated, but not allowed to do this."""


class InvalidInput(LanternError):
    """A request that cannot be carried out as given (the message says why)."""


class UnstorableText(InvalidInput):
    """Text that no database can keep as given: a NUL or a lone surrogate (``app.storable``)."""


class TooManyRequests(LanternError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PayloadTooLarge(LanternError):
    pass


class DeployFailed(LanternError):
    """A model server would not take a model version (vLLM down, or refusing the adapter)."""


#: Exception type -> (HTTP status, error code).
STATUS: dict[type[Exception], tuple[int, str]] = {
    # Before InvalidInput: the first match wins. 422, like any other malformed field.
    UnstorableText: (422, "invalid_input"),
    InvalidInput: (400, "invalid_input"),
    Unauthorized: (401, "unauthorized"),
    PermissionDenied: (403, "forbidden"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    PayloadTooLarge: (413, "payload_too_large"),
    TooManyRequests: (429, "rate_limited"),
    DeployFailed: (502, "deploy_failed"),
}


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def status_of(exc: LanternError) -> tuple[int, str]:
    """The HTTP status and error code for a Lantern exception."""
    for kind, (status, code) in STATUS.items():
        if isinstance(exc, kind):
            return status, code
    return 500, "internal"


#: The methods a 405's Allow header may list.
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app accepts on the request's path (asked of each
    route, so routers included in routers are searched too)."""
    from starlette.routing import Match

    return [
        method
        for method in METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Map Lantern's, FastAPI's and the backends' exceptions to JSON error bodies."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from llm.errors import LLMBackendError, LLMTimeout

    async def lantern_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LanternError)
        status, code = status_of(exc)
        if status == 500:
            return await unexpected(request, exc)
        headers = (
            {"Retry-After": str(exc.retry_after_s)} if isinstance(exc, TooManyRequests) else None
        )
        path = request.url.path
        if status == 401 and (path.startswith("/v1/") or path == "/metrics"):
            headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse(error_body(code, str(exc)), status, headers=headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the first route on the path; a 405 must list them all.
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code, headers=headers)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        ]
        return JSONResponse(error_body("invalid_input", "; ".join(problems)[:2000]), 422)

    async def llm_error(request: Request, exc: Exception) -> JSONResponse:
        log.warning("chat model failed on %s %s: %s", request.method, request.url.path, exc)
        container = getattr(request.app.state, "container", None)
        if container is not None:
            container.metrics.errors.labels("llm", type(exc).__name__).inc()
        if isinstance(exc, LLMTimeout):
            return JSONResponse(error_body("llm_timeout", "the language model timed out"), 504)
        return JSONResponse(
            error_body("llm_unavailable", "the language model is not available; try again"),
            503,
        )

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(error_body("internal", "internal error; see the server log"), 500)

    app.add_exception_handler(LanternError, lantern_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(LLMBackendError, llm_error)
    app.add_exception_handler(Exception, unexpected)
