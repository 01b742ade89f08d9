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

import itertools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from starlette.concurrency import iterate_in_threadpool

from app.api.deps import ContainerDep, CurrentActor
from app.api.schemas import CitationOut, RequestModel, sse_event, whole
from app.errors import InvalidInput, error_body
from app.services.answer import Answer, AnswerEvent
from app.services.answer_view import OUTCOME_FIELDS, answer_fields
from llm.base import ChatMessage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["openai"])


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
def models(who: CurrentActor, c: ContainerDep) -> ModelList:
    """``lantern`` (every readable collection) and one model per readable collection."""
    now = int(time.time())
    return ModelList(
        data=[
            ModelOut(id=name, created=int(at.timestamp()) if at else now)
            for name, at in c.chats.models(who)
        ]
    )


def _text(content: str | list[ContentPart] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    return " ".join(p.text or "" for p in content if p.type == "text")


def _finish(answer: Answer) -> str:
    return "length" if answer.finish_reason == "length" else "stop"


def _extension(answer: Answer) -> dict[str, Any]:
    fields = answer_fields(answer)
    return {
        "citations": [
            CitationOut(**{k: c[k] for k in CitationOut.model_fields if k in c}).model_dump()
            for c in fields["citations"]
        ],
        "lantern": {k: fields[k] for k in OUTCOME_FIELDS},
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
def chat_completions(body: CompletionIn, who: CurrentActor, c: ContainerDep) -> Any:
    """OpenAI chat completions over the knowledge base, with citations."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not _text(turns[-1].content).strip():
        raise InvalidInput("the last message must be a non-empty user message")
    history = [ChatMessage(m.role, _text(m.content)) for m in turns[:-1]]  # type: ignore[arg-type]
    events = c.chats.complete(
        who, _text(turns[-1].content), history=history, model=body.model, stream=body.stream
    )
    first = next(events)  # a refusal is a JSON error, not a stream
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())

    if not body.stream:
        answer = next(e.answer for e in itertools.chain([first], events) if e.answer is not None)
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
        _chunks(itertools.chain([first], events), cid, created, body.model),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _chunks(
    events: Iterator[AnswerEvent], cid: str, created: int, model: str
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
                yield chunk({}, _finish(event.answer), **_extension(event.answer))
            elif event.delta:
                yield chunk({"content": event.delta})
    except Exception:
        log.exception("a streamed completion failed")
        yield f"data: {json.dumps(error_body('internal', 'the answer failed'))}\n\n"
    yield "data: [DONE]\n\n"
