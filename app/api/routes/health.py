"""Liveness and readiness."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app.api.deps import ContainerDep
from app.api.schemas import ErrorOut, HealthOut
from app.db.migrate import current_revision, head_revision
from app.db.models import JobStatus
from app.errors import Unauthorized, error_body
from ingestion.ocr import ocr_available

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
def health(c: ContainerDep) -> HealthOut:
    """The process is up: which models are in use, and anything an admin should know."""
    warnings = []
    embedder = c.embedder
    if embedder.is_fallback:
        warnings.append(
            f"embedding fallback active: {embedder.model_name} instead of "
            f"{c.settings.embedding.model}; retrieval is noticeably worse"
        )
    if c.settings.ingestion.ocr and (missing := ocr_available()) is not None:
        warnings.append(f"{missing}; scans and pictures cannot be read")
    counts = c.documents.job_counts()
    return HealthOut(
        status="degraded" if warnings else "ok",
        embedding_model=embedder.model_name,
        embedding_fallback=embedder.is_fallback,
        chat_backend=c.chat_kind,
        queue_depth=sum(counts.get(s, 0) for s in JobStatus.UNFINISHED),
        warnings=warnings,
    )


@router.get("/ready", responses={503: {"description": "Not ready (the body says why)."}})
def ready(c: ContainerDep) -> JSONResponse:
    """Ready to serve: the database answers and its schema is current."""
    try:
        with c.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(c.engine)
    except Exception:
        return JSONResponse(error_body("not_ready", "the database is unreachable"), 503)
    if revision != head_revision():
        return JSONResponse(
            error_body("not_ready", f"database schema at {revision}, expected {head_revision()}"),
            503,
        )
    return JSONResponse({"status": "ready", "schema": revision})


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}},
        401: {
            "model": ErrorOut,
            "description": "LANTERN_SERVER__METRICS_TOKEN is set, and "
            "the request does not send it as a bearer token.",
        },
    },
)
def metrics(request: Request, c: ContainerDep) -> Response:
    """Prometheus metrics: request latency, time to first token, answer tokens, retrieval
    latency, ingestion stage durations, queue depth, errors. No user text in labels.

    With ``LANTERN_SERVER__METRICS_TOKEN`` set, send it as ``Authorization: Bearer ...``
    (Prometheus: ``authorization: {credentials: ...}`` in the scrape config)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    token = c.settings.server.metrics_token
    if token is not None:
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.strip().encode(), expected):
            raise Unauthorized("/metrics needs the metrics bearer token")

    return Response(c.metrics.render(), media_type=CONTENT_TYPE_LATEST)
