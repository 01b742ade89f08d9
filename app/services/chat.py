"""Chat sessions: multi-turn questions answered within the collections a user may read.

A session belongs to one user; anyone else gets ``NotFound``. Each question is
answered by ``AnswerService`` with the session's history and the caller's readable
collections (re-checked on every question, so a revoked grant takes effect at
once); the question and the answer, with its verified citations and provenance,
are stored as messages.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.chat import ChatMessage, ChatSession, Feedback
from app.errors import InvalidInput, NotFound
from app.services.access import AccessService
from app.services.answer import Answer, AnswerService
from app.services.auth import Principal
from llm.base import ChatMessage as Turn

log = logging.getLogger(__name__)

DEFAULT_TITLE = "New chat"
MAX_QUESTION_CHARS = 4000


@dataclass(frozen=True)
class ChatEvent:
    """A text delta while the answer streams, then the stored assistant message."""

    delta: str = ""
    answer: Answer | None = None
    message: ChatMessage | None = None
    question_message_id: str | None = None


def answer_meta(answer: Answer) -> dict[str, Any]:
    """What is stored with an assistant message besides its text and citations."""
    return {
        "abstained": answer.abstained,
        "finish_reason": answer.finish_reason,
        "notice": answer.notice,
        "standalone_question": answer.standalone_question,
        "dropped_markers": answer.dropped_markers,
        "unsupported": list(answer.unsupported),
        "provenance": dict(answer.provenance),
        "timings": dict(answer.timings),
    }


class ChatService:
    def __init__(
        self, sessions: sessionmaker[Session], access: AccessService, answers: AnswerService
    ) -> None:
        self.sessions = sessions
        self.access = access
        self.answers = answers

    # -- sessions ----------------------------------------------------------------------

    def create(
        self, who: Principal, *, title: str = "", collection_ids: Iterable[str] = ()
    ) -> ChatSession:
        scope = list(collection_ids)
        if scope:
            scope = self.access.scope(who, scope)  # NotFound for any it may not read
        with self.sessions.begin() as s:
            chat = ChatSession(
                user_id=who.user_id, title=_title(title) or DEFAULT_TITLE, collection_ids=scope
            )
            s.add(chat)
        return chat

    def list_sessions(self, who: Principal) -> list[ChatSession]:
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(ChatSession)
                    .where(ChatSession.user_id == who.user_id)
                    .order_by(ChatSession.updated_at.desc())
                )
            )

    def get(self, who: Principal, session_id: str) -> ChatSession:
        with self.sessions() as s:
            chat = s.get(ChatSession, session_id)
        if chat is None or chat.user_id != who.user_id:
            raise NotFound(f"no chat session {session_id}")
        return chat

    def update(
        self,
        who: Principal,
        session_id: str,
        *,
        title: str | None = None,
        collection_ids: Iterable[str] | None = None,
    ) -> ChatSession:
        self.get(who, session_id)
        scope = None if collection_ids is None else list(collection_ids)
        if scope:
            scope = self.access.scope(who, scope)
        with self.sessions.begin() as s:
            chat = s.get(ChatSession, session_id)
            assert chat is not None
            if title is not None:
                if not _title(title):
                    raise InvalidInput("a chat title must not be empty")
                chat.title = _title(title)
            if scope is not None:
                chat.collection_ids = scope
            chat.updated_at = datetime.now(UTC)
        return chat

    def delete(self, who: Principal, session_id: str) -> None:
        self.get(who, session_id)
        with self.sessions.begin() as s:
            chat = s.get(ChatSession, session_id)
            if chat is not None:
                s.delete(chat)

    def messages(self, who: Principal, session_id: str) -> list[ChatMessage]:
        self.get(who, session_id)
        return self._messages(session_id)

    def _messages(self, session_id: str) -> list[ChatMessage]:
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(ChatMessage)
                    .where(ChatMessage.session_id == session_id)
                    .order_by(ChatMessage.seq)
                )
            )

    # -- questions -------------------------------------------------------------------

    def ask(self, who: Principal, session_id: str, question: str) -> Iterator[ChatEvent]:
        """Answer ``question`` in the session: deltas, then the stored answer message."""
        question = question.strip()
        if not question:
            raise InvalidInput("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidInput(f"questions are limited to {MAX_QUESTION_CHARS} characters")
        chat = self.get(who, session_id)
        readable = self.access.readable(who)
        # A grant revoked since the chat began takes effect now: its collections drop out.
        scope = [c for c in chat.collection_ids if c in readable] if chat.collection_ids else []
        if not chat.collection_ids:
            scope = sorted(readable)
        history = [Turn(m.role, m.content) for m in self._messages(session_id)]  # type: ignore[arg-type]
        asked = self._append(session_id, "user", question, title_from=question)
        answer: Answer | None = None
        for event in self.answers.stream(question, collection_ids=scope, history=history):
            if event.answer is not None:
                answer = event.answer
            elif event.delta:
                yield ChatEvent(delta=event.delta)
        assert answer is not None
        stored = self._append(
            session_id,
            "assistant",
            answer.text,
            citations=[asdict(c) for c in answer.citations],
            meta=answer_meta(answer),
        )
        yield ChatEvent(answer=answer, message=stored, question_message_id=asked.id)

    def _append(
        self,
        session_id: str,
        role: str,
        content: str,
        *,
        citations: list[dict[str, Any]] | None = None,
        meta: dict[str, Any] | None = None,
        title_from: str | None = None,
    ) -> ChatMessage:
        with self.sessions.begin() as s:
            chat = s.get(ChatSession, session_id)
            if chat is None:  # deleted while the answer streamed
                raise NotFound(f"no chat session {session_id}")
            seq = s.scalar(
                select(func.coalesce(func.max(ChatMessage.seq) + 1, 0)).where(
                    ChatMessage.session_id == session_id
                )
            )
            msg = ChatMessage(
                session_id=session_id,
                seq=seq,
                role=role,
                content=content,
                citations=citations or [],
                meta=meta or {},
            )
            s.add(msg)
            chat.updated_at = datetime.now(UTC)
            if title_from and chat.title == DEFAULT_TITLE:
                chat.title = _title(title_from)
        return msg

    # -- feedback ----------------------------------------------------------------------

    def feedback(
        self, who: Principal, message_id: str, *, rating: int, comment: str = ""
    ) -> Feedback:
        """Thumbs up (+1) or down (-1) on an answer in one of the user's own chats; a
        second vote replaces the first."""
        if rating not in (1, -1):
            raise InvalidInput("rating must be 1 (up) or -1 (down)")
        with self.sessions.begin() as s:
            msg = s.get(ChatMessage, message_id)
            chat = s.get(ChatSession, msg.session_id) if msg else None
            if msg is None or chat is None or chat.user_id != who.user_id:
                raise NotFound(f"no message {message_id}")
            if msg.role != "assistant":
                raise InvalidInput("feedback is given on answers, not on questions")
            row = s.scalar(
                select(Feedback).where(
                    Feedback.message_id == message_id, Feedback.user_id == who.user_id
                )
            )
            if row is None:
                row = Feedback(message_id=message_id, user_id=who.user_id)
                s.add(row)
            row.rating = rating
            row.comment = comment.strip()[:4000]
        return row


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77].rstrip() + "..."
