"""The admin console: collections and access, documents, users, groups, API keys, audit,
model versions (``ModelsUI``)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import gradio as gr

from app.db.identity import Access
from app.services.actor import Actor
from app.services.audit import AuditQuery
from app.services.identity import IdentityService
from app.services.library import LibraryService, Upload
from ui.web.base import Handlers, refused
from ui.web.models import ModelsUI
from ui.web.status import StatusUI


class AdminUI(Handlers):
    """Handlers of the admin tab. The services refuse (and audit) a caller who may not
    do what a handler asks; the lists are shown to admins only."""

    #: What ``options`` fills: collection, group, member group, member user, people, status.
    FILLED = 6

    def __init__(
        self,
        *,
        identity: IdentityService,
        library: LibraryService,
        status: StatusUI,
        models: ModelsUI,
    ) -> None:
        super().__init__(identity)
        self.library = library
        self.status = status
        self.models = models

    # -- choices -------------------------------------------------------------------

    def fill(self, request: gr.Request) -> tuple[Any, ...]:
        """The console's choices on page load; nothing at all for members."""
        who, _ = self._caller(request)
        if not who.is_admin:
            return tuple(gr.update() for _ in range(self.FILLED))
        return self.options(request)

    def options(self, request: gr.Request) -> tuple[Any, ...]:
        """Collections, groups (twice), users, the people list and the system status."""
        _, actor = self._admin(request)
        groups = self._groups(actor)
        return (
            gr.update(choices=self._collections(actor)),
            gr.update(choices=groups),
            gr.update(choices=groups),
            gr.update(choices=self._users(actor)),
            self._people(actor),
            self.status.system_status(request),
        )

    def _collections(self, actor: Actor) -> list[tuple[str, str]]:
        views = self.library.list_collections(actor)
        return [(v.collection.name, v.collection.id) for v in views]

    def _groups(self, actor: Actor) -> list[tuple[str, str]]:
        return [(g.name, g.id) for g, _ in self.identity.list_groups(actor)]

    def _users(self, actor: Actor) -> list[tuple[str, str]]:
        return [(u.email, u.id) for u in self.identity.list_users(actor)]

    def _people(self, actor: Actor) -> str:
        emails = {u.id: u.email for u in self.identity.list_users(actor)}
        lines = []
        for g, members in self.identity.list_groups(actor):
            names = ", ".join(emails.get(m, m) for m in members) or "(empty)"
            lines.append(f"- **{html.escape(g.name)}**: {html.escape(names)}")
        return "**Groups**\n\n" + ("\n".join(lines) or "(none)")

    # -- collections and access ----------------------------------------------------

    def create_collection(self, name: str, request: gr.Request) -> tuple[Any, ...]:
        _, actor = self._caller(request)
        with refused():
            col = self.library.create_collection(actor, name)
        return gr.update(choices=self._collections(actor), value=col.id), ""

    def grants(self, cid: str | None, request: gr.Request) -> str:
        """Which groups may read or write the collection."""
        _, actor = self._admin(request)
        if not cid:
            return ""
        with refused():
            rows = self.library.grants(actor, cid)
        return "**Access**: " + (
            ", ".join(f"{html.escape(g.group_name)} ({g.access})" for g in rows) or "admins only"
        )

    def set_access(self, cid: str | None, gid: str | None, level: str, request: gr.Request) -> str:
        """Give a group read or write access to the collection, or take it away ("none")."""
        _, actor = self._caller(request)
        if not cid or not gid:
            raise gr.Error("Pick a collection and a group.")
        with refused():
            current = {g.group_id: g.access for g in self.library.grants(actor, cid)}
            if level == "none":
                current.pop(gid, None)
            else:
                current[gid] = level if level in Access.ALL else Access.READ
            self.library.set_grants(actor, cid, current)
        return self.grants(cid, request)

    # -- documents -----------------------------------------------------------------

    def documents_table(self, cid: str | None, request: gr.Request) -> list[list[Any]]:
        """name, status, stage, progress, ETA, error, the mail it is attached to and id
        of each document."""
        _, actor = self._admin(request)
        if not cid:
            return []
        rows = []
        with refused():
            views = self.library.list_documents(actor, cid)
        names = {p.document.id: p.document.name for p in views}
        for p in views:
            d, job = p.document, p.job
            parent = names.get(d.parent_id, d.parent_id or "") if d.parent_id else ""
            rows.append(
                [
                    d.name,
                    d.status,
                    (job.stage if job else None) or "",
                    f"{job.progress if job else 0.0:.0%}",
                    p.eta_s if p.eta_s is not None else "",
                    d.error or "",
                    parent,
                    d.id,
                ]
            )
        return rows

    def upload(
        self, cid: str | None, paths: list[str] | None, request: gr.Request
    ) -> tuple[Any, ...]:
        """Queue the files in the collection; returns the outcomes and the documents table."""
        _, actor = self._caller(request)
        if not cid:
            raise gr.Error("Pick a collection first.")
        if not paths:
            raise gr.Error("Choose files to upload.")
        limit = self.library.max_file_bytes
        files = [Upload.from_path(Path(p), max_bytes=limit) for p in paths]
        with refused():
            results = self.library.upload(actor, cid, files)
        lines = [
            f"- {html.escape(name)}: {result.outcome}"
            + (f" ({html.escape(result.reason)})" if result.reason else "")
            for name, result in results
        ]
        return "\n".join(lines), None, self.documents_table(cid, request)

    def delete_document(self, cid: str | None, did: str, request: gr.Request) -> list[list[Any]]:
        _, actor = self._caller(request)
        with refused():
            self.library.delete_document(actor, did.strip())
        return self.documents_table(cid, request)

    def reindex(self, cid: str | None, did: str, request: gr.Request) -> list[list[Any]]:
        _, actor = self._caller(request)
        with refused():
            self.library.reindex_document(actor, did.strip())
        return self.documents_table(cid, request)

    # -- people and keys -----------------------------------------------------------

    def create_user(
        self, mail: str, name: str, pw: str, role: str, request: gr.Request
    ) -> tuple[Any, ...]:
        """A new account; clears the form."""
        _, actor = self._caller(request)
        with refused():
            self.identity.create_user(actor, mail, name=name, password=pw or None, role=role)
        return gr.update(choices=self._users(actor)), "", "", ""

    def create_group(self, name: str, request: gr.Request) -> tuple[Any, ...]:
        _, actor = self._caller(request)
        with refused():
            self.identity.create_group(actor, name)
        groups = self._groups(actor)
        return gr.update(choices=groups), gr.update(choices=groups), "", self._people(actor)

    def add_member(self, gid: str | None, uid: str | None, request: gr.Request) -> str:
        _, actor = self._caller(request)
        if not gid or not uid:
            raise gr.Error("Pick a group and a user.")
        with refused():
            self.identity.add_member(actor, gid, uid)
        return self._people(actor)

    def create_key(self, name: str, request: gr.Request) -> str:
        """An API key for the caller, shown once."""
        _, actor = self._admin(request)
        with refused():
            new = self.identity.create_api_key(actor, name or "key")
        return f"New key **{html.escape(new.name)}** (id `{new.id}`), shown once:\n\n`{new.key}`"

    def revoke_key(self, key_id: str, request: gr.Request) -> str:
        _, actor = self._caller(request)
        with refused():
            self.identity.revoke_api_key(actor, key_id.strip())
        return f"Key `{html.escape(key_id.strip())}` revoked."

    def audit_log(self, action: str, outcome: str, request: gr.Request) -> list[list[Any]]:
        """The newest 200 events matching the action and outcome (either may be empty)."""
        _, actor = self._admin(request)
        emails = {u.id: u.email for u in self.identity.list_users(actor)}
        query = AuditQuery(action=action.strip() or None, outcome=outcome or None, limit=200)
        with refused():
            events = self.identity.audit_events(actor, query)
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
