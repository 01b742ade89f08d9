"""The audit log: uploads, deletions, permission changes, log-ins and questions.

Details carry ids, names and counts, never document text, answers, prompts,
passwords or keys (a question is recorded by its length and session, not its text).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app import storable
from app.db.audit import AuditEvent
from app.db.identity import User
from app.errors import LanternError, status_of
from app.services.actor import Actor

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditQuery:
    actor_id: str | None = None
    action: str | None = None
    target_id: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


@dataclass
class AuditDraft:
    """The event an ``AuditLog.event`` block is writing; the block may complete it."""

    target_type: str | None
    target_id: str | None
    details: dict[str, Any] = field(default_factory=dict)
    #: The outcome when the block returns (a block may set e.g. ``partial``).
    outcome: str = "ok"

    def outcome_on_exit(self, exc: BaseException) -> str:
        # A stream the client abandoned (GeneratorExit) was cut short, not broken.
        return "cancelled" if isinstance(exc, GeneratorExit) else "failed"


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record(
        self,
        action: str,
        actor: Actor,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        outcome: str = "ok",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Append one event. A failure to audit is logged, never raised to the caller."""
        try:
            with self.sessions.begin() as s:
                s.add(
                    AuditEvent(
                        actor_id=actor.user_id,
                        via=actor.via,
                        action=action,
                        target_type=target_type,
                        # Whatever a caller sent (a bad log-in e-mail), the event is kept.
                        target_id=storable.repaired(target_id),
                        outcome=outcome,
                        ip=actor.ip,
                        details=storable.repaired(details or {}),
                    )
                )
        except Exception:
            log.exception("could not write the audit event %s", action)

    @contextmanager
    def event(
        self,
        action: str,
        actor: Actor,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        details: dict[str, Any] | None = None,
        only_refusals: bool = False,
    ) -> Iterator[AuditDraft]:
        """Audit the block: ``ok`` when it returns, ``denied`` when it raises a Lantern
        error (refused: no access, bad input, not found, over a limit; the error code is
        in the details), ``failed`` on any other exception. The block may fill in the
        target and details as it learns them. The exception still propagates.
        ``only_refusals``: nothing is written when the block returns (its parts write
        their own events)."""
        draft = AuditDraft(target_type, target_id, dict(details or {}))
        try:
            yield draft
        except LanternError as e:
            draft.details["error"] = status_of(e)[1]
            self._record_draft(action, actor, draft, "denied")
            raise
        except BaseException as e:
            if not isinstance(e, GeneratorExit):
                draft.details["error"] = type(e).__name__
            self._record_draft(action, actor, draft, draft.outcome_on_exit(e))
            raise
        if not only_refusals:
            self._record_draft(action, actor, draft, draft.outcome)

    def _record_draft(self, action: str, actor: Actor, draft: AuditDraft, outcome: str) -> None:
        self.record(
            action,
            actor,
            target_type=draft.target_type,
            target_id=draft.target_id,
            outcome=outcome,
            details=draft.details,
        )

    def logged_in_from(self, email: str, ip: str, *, days: int = 90) -> bool:
        """Whether the user with ``email`` logged in from ``ip`` in the last ``days``."""
        since = datetime.now(UTC) - timedelta(days=days)
        stmt = (
            select(AuditEvent.id)
            .join(User, User.id == AuditEvent.target_id)
            .where(
                User.email == email.strip().lower(),
                AuditEvent.action == "login",
                AuditEvent.outcome == "ok",
                AuditEvent.ip == ip,
                AuditEvent.at >= since,
            )
            .limit(1)
        )
        with self.sessions() as s:
            return s.scalar(stmt) is not None

    def query(self, q: AuditQuery) -> list[AuditEvent]:
        """Matching events, newest first."""
        stmt = select(AuditEvent).order_by(AuditEvent.at.desc(), AuditEvent.id)
        if q.actor_id:
            stmt = stmt.where(AuditEvent.actor_id == q.actor_id)
        if q.action:
            stmt = stmt.where(AuditEvent.action == q.action)
        if q.target_id:
            stmt = stmt.where(AuditEvent.target_id == q.target_id)
        if q.outcome:
            stmt = stmt.where(AuditEvent.outcome == q.outcome)
        if q.since:
            stmt = stmt.where(AuditEvent.at >= q.since)
        if q.until:
            stmt = stmt.where(AuditEvent.at < q.until)
        with self.sessions() as s:
            return list(s.scalars(stmt.limit(q.limit).offset(q.offset)))
