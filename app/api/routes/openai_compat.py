"""OpenAI-compatible endpoints: ``/v1/models`` and ``/v1/chat/completions``.

Each model is a knowledge base: ``lantern`` searches every collection the caller
may read, ``lantern:<collection name>`` one collection. The last user message is
the question and earlier messages are the history; system messages are ignored
(Lantern's own prompt makes answers cite their sources). Answers carry their
verified citations in an extension field, ``citations``, on the completion (and on
the last chunk of a stream), next to ``lantern`` (abstained, finish reason, notice).
Works unchanged with the official ``openai`` client.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool

from app.api.deps import ContainerDep, CurrentUser, client_ip
from app.api.schemas import CitationOut, RequestModel, sse_event, whole
from app.container import Container
from app.errors import InvalidInput, NotFound, error_body
from app.services.answer import Answer, AnswerEvent
from app.services.auth import Principal
from app.services.ratelimit import QUESTION_COST
from llm.base import ChatMessage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])

ALL = "lantern"
PREFIX = "lantern:"


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "lantern"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class ContentPart(RequestModel):
    """A part of a message; only ``text`` parts are read (images and the rest are not)."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str = Field(examples=["text"])
    text: str | None = None


class Message(RequestModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[ContentPart] | None = None


class CompletionIn(RequestModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(examples=["lantern"])
    messages: list[Message] = Field(min_length=1, max_length=200)
    stream: bool = False
    max_tokens: Annotated[int, Field(ge=1), BeforeValidator(whole)] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)


@router.get("/models", response_model=ModelList)
def models(who: CurrentUser, c: ContainerDep) -> ModelList:
    """``lantern`` (every readable collection) and one model per readable collection."""
    cols = c.collections.list_collections(c.access.readable(who))
    now = int(time.time())
    data = [ModelOut(id=ALL, created=now)]
    data += [
        ModelOut(id=PREFIX + col.name, created=int(col.created_at.timestamp())) for col in cols
    ]
    return ModelList(data=data)


def _scope(c: Container, who: Principal, model: str) -> list[str]:
    if model == ALL:
        return sorted(c.access.readable(who))
    if model.startswith(PREFIX):
        name = model[len(PREFIX) :]
        readable = c.access.readable(who)
        for col in c.collections.list_collections(readable):
            if col.name == name:
                return [col.id]
    raise NotFound(f"no model {model!r}; GET /v1/models lists yours")


def _text(content: str | list[ContentPart] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return " ".join(p.text or "" for p in content if p.type == "text")


def _finish(answer: Answer) -> str:
    return "length" if answer.finish_reason == "length" else "stop"


def _extension(answer: Answer) -> dict[str, Any]:
    return {
        "citations": [
            CitationOut(
                **{k: v for k, v in asdict(c).items() if k in CitationOut.model_fields}
            ).model_dump()
            for c in answer.citations
        ],
        "lantern": {
            "abstained": answer.abstained,
            "finish_reason": answer.finish_reason,
            "notice": answer.notice,
        },
    }


_CITATIONS = {"type": "array", "items": {"$ref": "#/components/schemas/CitationOut"}}
_CHUNK = {
    "type": "object",
    "required": ["id", "object", "created", "model", "choices"],
    "properties": {
        "id": {"type": "string"},
        "object": {"const": "chat.completion.chunk"},
        "created": {"type": "integer"},
        "model": {"type": "string"},
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "delta", "finish_reason"],
                "properties": {
                    "index": {"type": "integer"},
                    "delta": {"type": "object"},
                    "finish_reason": {"enum": ["stop", "length", None]},
                },
            },
        },
        "citations": _CITATIONS,
        "lantern": {"type": "object"},
    },
}
#: Each event of a completion stream: a chunk (or an error), and last ``[DONE]``.
COMPLETION_EVENT = {
    "if": {"properties": {"data": {"const": "[DONE]"}}},
    "then": {"properties": {"event": {"const": "message"}}},
    "else": sse_event(None, {"anyOf": [_CHUNK, {"$ref": "#/components/schemas/ErrorOut"}]}),
}


@router.post(
    "/chat/completions",
    responses={
        200: {
            "description": "A chat.completion, or with `stream: true` a stream of "
            "chat.completion.chunk events ending in `data: [DONE]`.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/event-stream": {"schema": COMPLETION_EVENT},
            },
        }
    },
)
def chat_completions(
    body: CompletionIn, request: Request, who: CurrentUser, c: ContainerDep
) -> Any:
    """OpenAI chat completions over the knowledge base, with citations."""
    c.rate_limiter.hit(who, QUESTION_COST - 1)
    scope = _scope(c, who, body.model)
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not _text(turns[-1].content).strip():
        raise InvalidInput("the last message must be a non-empty user message")
    question = _text(turns[-1].content).strip()
    if len(question) > 4000:
        raise InvalidInput("questions are limited to 4000 characters")
    history = [ChatMessage(m.role, _text(m.content)) for m in turns[:-1]]  # type: ignore[arg-type]
    events = c.answers.stream(question, collection_ids=scope, history=history)
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    def audit(answer: Answer) -> None:
        c.audit.record(
            "question",
            who,
            target_type="model",
            target_id=body.model[:64],
            ip=client_ip(request),
            details={
                "chars": len(question),
                "api": "openai",
                "provenance": dict(answer.provenance),
                "timings": dict(answer.timings),
            },
        )

    if not body.stream:
        answer = next(e.answer for e in events if e.answer is not None)
        audit(answer)
        return {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.text},
                    "finish_reason": _finish(answer),
                }
            ],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            **_extension(answer),
        }
    return StreamingResponse(
        _chunks(events, cid, created, body.model, audit),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _chunks(
    events: Iterator[AnswerEvent], cid: str, created: int, model: str, audit: Any
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        payload = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        async for event in iterate_in_threadpool(events):
            if event.answer is not None:
                audit(event.answer)
                yield chunk({}, _finish(event.answer), **_extension(event.answer))
            elif event.delta:
                yield chunk({"content": event.delta})
    except Exception:
        log.exception("a streamed completion failed")
        yield f"data: {json.dumps(error_body('internal', 'the answer failed'))}\n\n"
    yield "data: [DONE]\n\n"
