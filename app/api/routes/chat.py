"""Chat sessions, questions (JSON or a server-sent event stream) and feedback."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter
from sse_starlette import EventSourceResponse
from starlette.concurrency import iterate_in_threadpool

from app.api.deps import ContainerDep, CurrentActor
from app.api.schemas import (
    ANSWER_EVENT,
    AnswerOut,
    AskIn,
    ChatIn,
    ChatOut,
    ChatPatch,
    FeedbackIn,
    FeedbackOut,
    MessageOut,
)
from app.errors import LanternError, error_body, status_of
from app.services.answer_view import OUTCOME_FIELDS, answer_fields
from app.services.chat import ChatEvent

log = logging.getLogger(__name__)
router = APIRouter(tags=["chat"])

STREAM_DOC = """Server-sent events, in order:

- `token`: `{"text": "..."}`, a piece of the answer as it is generated;
- `citations`: a list of verified citations (document, page, quote, offsets);
- `done`: `{"message_id", "question_message_id", "abstained", "finish_reason",
  "notice", "timings"}`.

An `error` event (`{"error": {"code", "message"}}`) ends a stream that failed."""


@router.get("/chats", response_model=list[ChatOut])
def list_chats(who: CurrentActor, c: ContainerDep) -> list[ChatOut]:
    """The caller's chat sessions, most recent first."""
    return [ChatOut.model_validate(s) for s in c.chats.list_sessions(who)]


@router.post("/chats", response_model=ChatOut, status_code=201)
def create_chat(body: ChatIn, who: CurrentActor, c: ContainerDep) -> ChatOut:
    """Start a chat, optionally limited to some readable collections."""
    return ChatOut.model_validate(
        c.chats.create(who, title=body.title, collection_ids=body.collection_ids)
    )


@router.get("/chats/{chat_id}", response_model=ChatOut)
def get_chat(chat_id: str, who: CurrentActor, c: ContainerDep) -> ChatOut:
    """One of the caller's chats."""
    return ChatOut.model_validate(c.chats.get(who, chat_id))


@router.patch("/chats/{chat_id}", response_model=ChatOut)
def update_chat(chat_id: str, body: ChatPatch, who: CurrentActor, c: ContainerDep) -> ChatOut:
    """Rename a chat or change the collections it searches."""
    return ChatOut.model_validate(
        c.chats.update(who, chat_id, title=body.title, collection_ids=body.collection_ids)
    )


@router.delete("/chats/{chat_id}", status_code=204)
def delete_chat(chat_id: str, who: CurrentActor, c: ContainerDep) -> None:
    """Delete a chat and its messages."""
    c.chats.delete(who, chat_id)


@router.get("/chats/{chat_id}/messages", response_model=list[MessageOut])
def history(chat_id: str, who: CurrentActor, c: ContainerDep) -> list[MessageOut]:
    """The chat's questions and answers, oldest first, with citations."""
    return [MessageOut.model_validate(m) for m in c.chats.messages(who, chat_id)]


@router.post(
    "/chats/{chat_id}/messages",
    response_model=AnswerOut,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": ANSWER_EVENT}},
            "description": "With `stream: true`: " + STREAM_DOC,
        }
    },
)
def ask(chat_id: str, body: AskIn, who: CurrentActor, c: ContainerDep) -> Any:
    """Ask a question in the chat. The answer cites the sources it quotes; when the
    documents do not answer it, it says so."""
    events = c.chats.ask(who, chat_id, body.question, stream=body.stream)
    if body.stream:
        first = next(events)  # raise NotFound / InvalidInput as a JSON error, not a stream
        return EventSourceResponse(_sse(first, events), ping=15)
    final = None
    for event in events:
        if event.message is not None:
            final = event
    assert final is not None
    return answer_out(final)


def answer_out(event: ChatEvent) -> AnswerOut:
    assert event.message is not None
    assert event.answer is not None
    fields = answer_fields(event.answer)
    return AnswerOut(
        question_message_id=event.question_message_id or "",
        message=MessageOut.model_validate(event.message),
        **{k: fields[k] for k in OUTCOME_FIELDS},
    )


async def _sse(first: ChatEvent, rest: Iterator[ChatEvent]) -> AsyncIterator[dict[str, str]]:
    def chain() -> Iterator[ChatEvent]:
        yield first
        yield from rest

    try:
        async for event in iterate_in_threadpool(chain()):
            if event.delta:
                yield {"event": "token", "data": json.dumps({"text": event.delta})}
            elif event.message is not None and event.answer is not None:
                fields = answer_fields(event.answer)
                citations = json.dumps(fields["citations"], ensure_ascii=False)
                yield {"event": "citations", "data": citations}
                done = {
                    "message_id": event.message.id,
                    "question_message_id": event.question_message_id,
                    **{k: fields[k] for k in (*OUTCOME_FIELDS, "timings")},
                }
                yield {"event": "done", "data": json.dumps(done)}
    except LanternError as e:
        yield {"event": "error", "data": json.dumps(error_body(status_of(e)[1], str(e)))}
    except Exception:
        log.exception("a streamed answer failed")
        body = error_body("internal", "the answer failed; see the server log")
        yield {"event": "error", "data": json.dumps(body)}


@router.post("/messages/{message_id}/feedback", response_model=FeedbackOut)
def feedback(message_id: str, body: FeedbackIn, who: CurrentActor, c: ContainerDep) -> FeedbackOut:
    """Thumbs up or down, with an optional comment, on one of the caller's answers."""
    row = c.chats.feedback(who, message_id, rating=body.rating, comment=body.comment)
    return FeedbackOut.model_validate(row)
