"""A mail's attachments as documents of their own: linked to the mail
(``parent_id``), in its collection, added by the rules of an upload (``add_in``)
inside the transaction that publishes the mail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.audit import AuditEvent
from app.db.models import Document
from app.services.documents import AddResult, add_in, kept_name, reject_in, too_large_reason

#: How deep attachments are followed: a mail's attachments, an attached mail's
#: attachments... up to this many levels below the uploaded file (stops mail bombs).
MAX_ATTACHMENT_DEPTH = 3


@dataclass(frozen=True)
class StoredAttachment:
    """An attachment whose bytes are in the blob store (``sha`` None: too large, not stored)."""

    name: str
    size: int
    sha: str | None


def queue_attachments(
    s: Session, parent: Document, attachments: Sequence[StoredAttachment], *, max_bytes: int
) -> list[AddResult]:
    """Add a mail's attachments as documents linked to it (``parent_id``), named
    ``<mail>/<file>`` so they never become versions of an unrelated upload. Past
    ``MAX_ATTACHMENT_DEPTH`` levels or over the size limit they are recorded as
    failed, with the reason. Each is audited (``document.attach``, by the system:
    the mail's upload was the user's act) in the same transaction."""
    depth = _depth(s, parent)
    results = []
    for a in attachments:
        name = kept_name(f"{parent.name}/{a.name}")
        if depth >= MAX_ATTACHMENT_DEPTH:
            reason = (
                f"not ingested: attachments are followed {MAX_ATTACHMENT_DEPTH} mails deep, "
                "and this one is deeper"
            )
        elif a.sha is None or a.size > max_bytes:
            reason = too_large_reason(a.size, max_bytes)
        else:
            reason = ""
        if reason:
            result = reject_in(
                s,
                collection_id=parent.collection_id,
                name=name,
                size=a.size,
                reason=reason,
                uploader=parent.uploader,
                parent_id=parent.id,
            )
        else:
            assert a.sha is not None
            result = add_in(
                s,
                collection_id=parent.collection_id,
                name=name,
                size=a.size,
                sha=a.sha,
                uploader=parent.uploader,
                parent_id=parent.id,
            )
        results.append(result)
        s.add(
            AuditEvent(
                via="system",
                action="document.attach",
                target_type="document",
                target_id=result.document_id,
                outcome="rejected" if result.outcome == "rejected" else "ok",
                details={
                    "collection_id": parent.collection_id,
                    "name": name,
                    "parent_id": parent.id,
                    "outcome": result.outcome,
                },
            )
        )
    return results


def _depth(s: Session, doc: Document) -> int:
    """How many mails ``doc`` is attached below (0 for an upload)."""
    depth, parent = 0, doc.parent_id
    while parent is not None and depth <= MAX_ATTACHMENT_DEPTH:
        depth += 1
        parent = s.scalar(select(Document.parent_id).where(Document.id == parent))
    return depth
