"""The audit log: uploads, deletions, permission changes, log-ins and questions.

Details carry ids, names and counts, never document text, answers, prompts,
passwords or keys (a question is recorded by its length and session, not its text).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app import storable
from app.db.audit import AuditEvent
from app.db.identity import User
from app.services.auth import Principal

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


class AuditLog:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def record(
        self,
        action: str,
        who: Principal | None = None,
        *,
        target_type: str | None = None,
        target_id: str | None = None,
        outcome: str = "ok",
        ip: str | None = None,
        details: dict[str, Any] | None = None,
        via: str | None = None,
    ) -> None:
        """Append one event. A failure to audit is logged, never raised to the caller."""
        try:
            with self.sessions.begin() as s:
                s.add(
                    AuditEvent(
                        actor_id=who.user_id if who else None,
                        via=via or (who.via if who else "system"),
                        action=action,
                        target_type=target_type,
                        # Whatever a caller sent (a bad log-in e-mail), the event is kept.
                        target_id=storable.repaired(target_id),
                        outcome=outcome,
                        ip=ip,
                        details=storable.repaired(details or {}),
                    )
                )
        except Exception:
            log.exception("could not write the audit event %s", action)

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
