"""The admin console: collections and access, documents, users, groups, API keys, audit."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr

from app.db.identity import Access
from app.services.access import AccessService
from app.services.actor import Actor
from app.services.audit import AuditLog, AuditQuery
from app.services.auth import AuthService
from app.services.collections import CollectionService
from app.services.documents import DocumentService
from app.services.indexing import IndexingService
from ui.web.base import Handlers, refused
from ui.web.status import StatusUI


class AdminUI(Handlers):
    """Handlers of the admin tab; every one refuses a caller who is not an admin."""

    #: What ``options`` fills: collection, group, member group, member user, people, status.
    FILLED = 6

    def __init__(
        self,
        *,
        auth: AuthService,
        collections: CollectionService,
        access: AccessService,
        documents: DocumentService,
        indexing: IndexingService,
        audit: AuditLog,
        status: StatusUI,
    ) -> None:
        super().__init__(auth)
        self.collections = collections
        self.access = access
        self.documents = documents
        self.indexing = indexing
        self.audit = audit
        self.status = status

    def _audit(self, action: str, actor: Actor, **fields: Any) -> None:
        """The UI's own audit records, until the services write them."""
        self.audit.record(action, actor.principal, **fields)

    # -- choices -------------------------------------------------------------------

    def fill(self, request: gr.Request) -> tuple[Any, ...]:
        """The console's choices on page load; nothing at all for members."""
        who, _ = self._caller(request)
        if not who.is_admin:
            return tuple(gr.update() for _ in range(self.FILLED))
        return self.options(request)

    def options(self, request: gr.Request) -> tuple[Any, ...]:
        """Collections, groups (twice), users, the people list and the system status."""
        self._admin(request)
        groups = self._groups()
        return (
            gr.update(choices=self._collections()),
            gr.update(choices=groups),
            gr.update(choices=groups),
            gr.update(choices=self._users()),
            self._people(),
            self.status.system_status(request),
        )

    def _collections(self) -> list[tuple[str, str]]:
        return [(x.name, x.id) for x in self.collections.list_collections()]

    def _groups(self) -> list[tuple[str, str]]:
        return [(g.name, g.id) for g, _ in self.access.list_groups()]

    def _users(self) -> list[tuple[str, str]]:
        return [(u.email, u.id) for u in self.auth.list_users()]

    def _people(self) -> str:
        emails = {u.id: u.email for u in self.auth.list_users()}
        lines = []
        for g, members in self.access.list_groups():
            names = ", ".join(emails.get(m, m) for m in members) or "(empty)"
            lines.append(f"- **{html.escape(g.name)}**: {html.escape(names)}")
        return "**Groups**\n\n" + ("\n".join(lines) or "(none)")

    # -- collections and access ----------------------------------------------------

    def create_collection(self, name: str, request: gr.Request) -> tuple[Any, ...]:
        _, actor = self._admin(request)
        with refused():
            col = self.collections.create(name)
        self._audit("collection.create", actor, target_type="collection", target_id=col.id)
        return gr.update(choices=self._collections(), value=col.id), ""

    def grants(self, cid: str | None, request: gr.Request) -> str:
        """Which groups may read or write the collection."""
        self._admin(request)
        if not cid:
            return ""
        rows = self.access.grants(cid)
        return "**Access**: " + (
            ", ".join(f"{html.escape(g.group_name)} ({g.access})" for g in rows) or "admins only"
        )

    def set_access(self, cid: str | None, gid: str | None, level: str, request: gr.Request) -> str:
        """Give a group read or write access to the collection, or take it away ("none")."""
        _, actor = self._admin(request)
        if not cid or not gid:
            raise gr.Error("Pick a collection and a group.")
        current = {g.group_id: g.access for g in self.access.grants(cid)}
        if level == "none":
            current.pop(gid, None)
        else:
            current[gid] = level if level in Access.ALL else Access.READ
        with refused():
            self.access.set_grants(cid, current)
        self._audit(
            "collection.access",
            actor,
            target_type="collection",
            target_id=cid,
            details={"grants": current},
        )
        return self.grants(cid, request)

    # -- documents -----------------------------------------------------------------

    def documents_table(self, cid: str | None, request: gr.Request) -> list[list[Any]]:
        """name, status, stage, progress, ETA, error and id of each document."""
        self._admin(request)
        if not cid:
            return []
        rows = []
        for p in self.indexing.progress(cid):
            d, job = p.document, p.job
            rows.append(
                [
                    d.name,
                    d.status,
                    (job.stage if job else None) or "",
                    f"{job.progress if job else 0.0:.0%}",
                    p.eta_s if p.eta_s is not None else "",
                    d.error or "",
                    d.id,
                ]
            )
        return rows

    def upload(
        self, cid: str | None, paths: list[str] | None, request: gr.Request
    ) -> tuple[Any, ...]:
        """Queue the files in the collection; returns the outcomes and the documents table."""
        who, actor = self._admin(request)
        if not cid:
            raise gr.Error("Pick a collection first.")
        if not paths:
            raise gr.Error("Choose files to upload.")
        lines = []
        for p in paths:
            name = Path(p).name
            with refused():
                result = self.documents.add_file(
                    collection_id=cid, name=name, path=Path(p), uploader=who.email
                )
            self._audit(
                "document.upload",
                actor,
                target_type="document",
                target_id=result.document_id,
                details={"collection_id": cid, "name": name, "outcome": result.outcome},
            )
            lines.append(
                f"- {html.escape(name)}: {result.outcome}"
                + (f" ({html.escape(result.reason)})" if result.reason else "")
            )
        self.indexing.wake_workers()
        return "\n".join(lines), None, self.documents_table(cid, request)

    def delete_document(self, cid: str | None, did: str, request: gr.Request) -> list[list[Any]]:
        _, actor = self._admin(request)
        with refused():
            self.indexing.delete(did.strip())
        self._audit("document.delete", actor, target_type="document", target_id=did.strip())
        return self.documents_table(cid, request)

    def reindex(self, cid: str | None, did: str, request: gr.Request) -> list[list[Any]]:
        who, _ = self._admin(request)
        with refused():
            self.documents.reprocess(did.strip(), uploader=who.email)
        self.indexing.wake_workers()
        return self.documents_table(cid, request)

    # -- people and keys -----------------------------------------------------------

    def create_user(
        self, mail: str, name: str, pw: str, role: str, request: gr.Request
    ) -> tuple[Any, ...]:
        """A new account; clears the form."""
        _, actor = self._admin(request)
        with refused():
            user = self.auth.create_user(mail, name=name, password=pw or None, role=role)
        self._audit("user.create", actor, target_type="user", target_id=user.id)
        return gr.update(choices=self._users()), "", "", ""

    def create_group(self, name: str, request: gr.Request) -> tuple[Any, ...]:
        _, actor = self._admin(request)
        with refused():
            g = self.access.create_group(name)
        self._audit("group.create", actor, target_type="group", target_id=g.id)
        groups = self._groups()
        return gr.update(choices=groups), gr.update(choices=groups), "", self._people()

    def add_member(self, gid: str | None, uid: str | None, request: gr.Request) -> str:
        _, actor = self._admin(request)
        if not gid or not uid:
            raise gr.Error("Pick a group and a user.")
        with refused():
            self.access.add_member(gid, uid)
        self._audit("group.members", actor, target_type="group", target_id=gid)
        return self._people()

    def create_key(self, name: str, request: gr.Request) -> str:
        """An API key for the caller, shown once."""
        who, actor = self._admin(request)
        with refused():
            new = self.auth.create_api_key(who.user_id, name or "key")
        self._audit("api_key.create", actor, target_type="api_key", target_id=new.id)
        return f"New key **{html.escape(new.name)}** (id `{new.id}`), shown once:\n\n`{new.key}`"

    def revoke_key(self, key_id: str, request: gr.Request) -> str:
        _, actor = self._admin(request)
        with refused():
            self.auth.revoke_api_key(key_id.strip())
        self._audit("api_key.revoke", actor, target_type="api_key", target_id=key_id.strip())
        return f"Key `{html.escape(key_id.strip())}` revoked."

    def audit_log(self, action: str, outcome: str, request: gr.Request) -> list[list[Any]]:
        """The newest 200 events matching the action and outcome (either may be empty)."""
        self._admin(request)
        emails = {u.id: u.email for u in self.auth.list_users()}
        with refused():
            events = self.audit.query(
                AuditQuery(action=action.strip() or None, outcome=outcome or None, limit=200)
            )
        return [
            [
                str(e.at)[:19],
                emails.get(e.actor_id or "", ""),
                e.via,
                e.action,
                e.target_id or "",
                e.outcome,
                str(e.details)[:200],
            ]
            for e in events
        ]
