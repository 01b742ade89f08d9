"""Chat sessions and questions: multi-turn answers within the collections a user may read.

A session belongs to one user; anyone else gets ``NotFound``. Each question is
answered by ``AnswerService`` with the session's history and the caller's readable
collections (re-checked on every question, so a revoked grant takes effect at
once); the question and the answer, with its verified citations and provenance,
are stored as messages. One-off questions (the OpenAI-compatible API) go through
the same intake, permissions and audit without a stored session.

Every question is audited when its outcome is known: ``ok`` once answered,
``denied`` when refused (empty, too long, over the rate limit, an unreadable chat
or collection), ``failed`` when the answer broke, ``cancelled`` when the caller
left mid-stream. The record holds the question's length, never its text.

Which model answers is the model router's choice for the asker (a fine-tuned
version only if they may read every collection it was trained on); the audit
record, the stored answer and the feedback on it name that version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.chat import ChatMessage, ChatSession, Feedback
from app.errors import InvalidInput, NotFound
from app.services.access import AccessService
from app.services.actor import Actor
from app.services.answer import Answer, AnswerEvent, AnswerService
from app.services.answer_view import answer_meta
from app.services.audit import AuditDraft, AuditLog
from app.services.auth import Principal
from app.services.collections import CollectionService
from app.services.intake import MAX_COMMENT_CHARS, QUESTION_COST, question_text
from app.services.model_router import ModelChoice, ModelRouter
from app.services.ratelimit import RateLimiter
from llm.base import ChatMessage as Turn

log = logging.getLogger(__name__)

DEFAULT_TITLE = "New chat"
#: The OpenAI-compatible model that searches every readable collection;
#: ``lantern:<collection name>`` searches one.
ALL_COLLECTIONS_MODEL = "lantern"
MODEL_PREFIX = "lantern:"


@dataclass(frozen=True)
class ChatEvent:
    """A text delta while the answer streams, then the stored assistant message."""

    delta: str = ""
    answer: Answer | None = None
    message: ChatMessage | None = None
    question_message_id: str | None = None


class ChatService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        access: AccessService,
        answers: AnswerService,
        *,
        audit: AuditLog,
        collections: CollectionService,
        limiter: RateLimiter | None = None,
        router: ModelRouter | None = None,
        on_feedback: Callable[[str | None, int], None] | None = None,
    ) -> None:
        """``router`` picks the model version for each asker (None: always the configured
        model); ``on_feedback`` is called with the answer's version (None: the base
        model) and the rating of every vote (for metrics)."""
        self.sessions = sessions
        self.access = access
        self.answers = answers
        self.audit = audit
        self.collections = collections
        self.limiter = limiter
        self.router = router
        self.on_feedback = on_feedback

    # -- sessions ----------------------------------------------------------------------

    def create(
        self, actor: Actor, *, title: str = "", collection_ids: Iterable[str] = ()
    ) -> ChatSession:
        who = actor.require()
        scope = list(collection_ids)
        if scope:
            scope = self.access.scope(who, scope)  # NotFound for any it may not read
        with self.sessions.begin() as s:
            chat = ChatSession(
                user_id=who.user_id, title=_title(title) or DEFAULT_TITLE, collection_ids=scope
            )
            s.add(chat)
        return chat

    def list_sessions(self, actor: Actor) -> list[ChatSession]:
        who = actor.require()
        with self.sessions() as s:
            return list(
                s.scalars(
                    select(ChatSession)
                    .where(ChatSession.user_id == who.user_id)
                    .order_by(ChatSession.updated_at.desc())
                )
            )

    def get(self, actor: Actor, session_id: str) -> ChatSession:
        who = actor.require()
        with self.sessions() as s:
            chat = s.get(ChatSession, session_id)
        if chat is None or chat.user_id != who.user_id:
            raise NotFound(f"no chat session {session_id}")
        return chat

    def update(
        self,
        actor: Actor,
        session_id: str,
        *,
        title: str | None = None,
        collection_ids: Iterable[str] | None = None,
    ) -> ChatSession:
        self.get(actor, session_id)
        scope = None if collection_ids is None else list(collection_ids)
        if scope:
            scope = self.access.scope(actor.require(), scope)
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

    def delete(self, actor: Actor, session_id: str) -> None:
        self.get(actor, session_id)
        with self.sessions.begin() as s:
            chat = s.get(ChatSession, session_id)
            if chat is not None:
                s.delete(chat)

    def messages(self, actor: Actor, session_id: str) -> list[ChatMessage]:
        self.get(actor, session_id)
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

    def ask(
        self, actor: Actor, session_id: str, question: str, *, stream: bool = False
    ) -> Iterator[ChatEvent]:
        """Answer ``question`` in the session: deltas, then the stored answer message.

        A refusal (bad question, no such chat, over the limit) is raised by the first
        ``next()``, before anything streams."""
        asked_in = ("chat", session_id)
        with self._question(actor, question, api="chat", stream=stream, on=asked_in) as q:
            question = self._intake(actor, question)
            who = actor.require()
            chat = self.get(actor, session_id)
            readable = self.access.readable(who)
            # A grant revoked since the chat began takes effect now: its collections drop out.
            scope = [c for c in chat.collection_ids if c in readable] if chat.collection_ids else []
            if not chat.collection_ids:
                scope = sorted(readable)
            history = [Turn(m.role, m.content) for m in self._messages(session_id)]  # type: ignore[arg-type]
            choice = self._choose(q, who, readable)
            asked = self._append(session_id, "user", question, title_from=question)
            answer: Answer | None = None
            events = self.answers.stream(
                question, collection_ids=scope, history=history, model=choice
            )
            for event in events:
                if event.answer is not None:
                    answer = event.answer
                elif event.delta:
                    yield ChatEvent(delta=event.delta)
            assert answer is not None
            _record_outcome(q, answer)
            stored = self._append(
                session_id,
                "assistant",
                answer.text,
                citations=[asdict(c) for c in answer.citations],
                meta=answer_meta(answer),
            )
            yield ChatEvent(answer=answer, message=stored, question_message_id=asked.id)

    def complete(
        self,
        actor: Actor,
        question: str,
        *,
        history: Sequence[Turn] = (),
        model: str = ALL_COLLECTIONS_MODEL,
        stream: bool = False,
        api: str = "openai",
    ) -> Iterator[AnswerEvent]:
        """A one-off answer (nothing stored) in the collections ``model`` names:
        ``lantern`` for every readable one, ``lantern:<name>`` for one."""
        with self._question(actor, question, api=api, stream=stream, on=("model", model)) as q:
            question = self._intake(actor, question)
            readable = self._readable(actor)
            scope = self._scope(readable, model)
            choice = self._choose(q, actor.principal, readable)
            events = self.answers.stream(
                question, collection_ids=scope, history=history, model=choice
            )
            for event in events:
                if event.answer is not None:
                    _record_outcome(q, event.answer)
                yield event

    def models(self, actor: Actor) -> list[tuple[str, datetime | None]]:
        """The OpenAI model names the caller may use (every readable collection, or one),
        with when each began."""
        cols = self.collections.list_collections(self._readable(actor))
        named = [(MODEL_PREFIX + c.name, c.created_at) for c in cols]
        return [(ALL_COLLECTIONS_MODEL, None), *named]

    def model_scope(self, actor: Actor, model: str) -> list[str]:
        """The collection ids an OpenAI model name stands for, for this caller."""
        return self._scope(self._readable(actor), model)

    def _scope(self, readable: set[str], model: str) -> list[str]:
        if model == ALL_COLLECTIONS_MODEL:
            return sorted(readable)
        if model.startswith(MODEL_PREFIX):
            name = model[len(MODEL_PREFIX) :]
            for col in self.collections.list_collections(readable):
                if col.name == name:
                    return [col.id]
        raise NotFound(f"no model {model!r}; GET /v1/models lists yours")

    def _choose(
        self, q: AuditDraft, who: Principal | None, readable: set[str]
    ) -> ModelChoice | None:
        """The router's model for this asker (None: the configured model), named in the
        question's audit record even if the answer then fails."""
        if self.router is None:
            return None
        choice = self.router.choose(who, readable)
        q.details["model_version"] = choice.version
        return choice

    def _readable(self, actor: Actor) -> set[str]:
        if actor.principal is None:  # the command line reads everything
            actor.require_admin()
            return {c.id for c in self.collections.list_collections()}
        return self.access.readable(actor.principal)

    def _question(
        self, actor: Actor, question: str, *, api: str, stream: bool, on: tuple[str, str]
    ) -> AbstractContextManager[AuditDraft]:
        """The audit event of one question, asked in a chat or of a model: its length,
        never its text."""
        kind, target_id = on
        return self.audit.event(
            "question",
            actor,
            target_type=kind,
            target_id=target_id[:64],
            details={"chars": len(question), "api": api, "stream": stream},
        )

    def _intake(self, actor: Actor, question: str) -> str:
        """The same rules for every question: its cost against the budget, its text."""
        if self.limiter is not None and actor.principal is not None:
            # The request itself has already cost 1.
            self.limiter.hit(actor.principal, QUESTION_COST - 1)
        return question_text(question)

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
        self, actor: Actor, message_id: str, *, rating: int, comment: str = ""
    ) -> Feedback:
        """Thumbs up (+1) or down (-1) on an answer in one of the user's own chats; a
        second vote replaces the first."""
        with self.audit.event(
            "feedback",
            actor,
            target_type="message",
            target_id=message_id,
            details={"rating": rating},
        ) as draft:
            row, version = self._feedback(
                actor.require(), message_id, rating=rating, comment=comment
            )
            draft.details["model_version"] = version
        if self.on_feedback is not None:
            self.on_feedback(version, rating)
        return row

    def _feedback(
        self, who: Principal, message_id: str, *, rating: int, comment: str
    ) -> tuple[Feedback, str | None]:
        """The stored vote, and the model version that wrote the answer."""
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
            row.comment = comment.strip()[:MAX_COMMENT_CHARS]
            version = answer_version(msg.meta)
        return row, version


def answer_version(meta: dict[str, Any] | None) -> str | None:
    """The model version a stored answer names in its provenance (None: the base model)."""
    provenance = (meta or {}).get("provenance")
    version = provenance.get("model_version") if isinstance(provenance, dict) else None
    return version if isinstance(version, str) else None


def _record_outcome(q: AuditDraft, answer: Answer) -> None:
    q.details.update(
        abstained=answer.abstained,
        finish_reason=answer.finish_reason,
        model_version=answer.provenance.get("model_version"),
        provenance=dict(answer.provenance),
    )
    if answer.incomplete:
        q.outcome = "failed"


def _title(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77].rstrip() + "..."
