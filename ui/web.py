"""The Gradio app: employee chat and the admin console, on the same services as the API.

Every handler resolves the caller from the session cookie and goes through the
same permission checks as the REST API: hiding the admin tab is cosmetics, the
``admin`` check in each admin handler is the rule.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

import gradio as gr

from app.api.deps import SESSION_COOKIE
from app.container import Container
from app.db.identity import Access, Role
from app.db.models import JobStatus
from app.errors import LanternError
from app.services.audit import AuditQuery
from app.services.auth import Principal

T = TypeVar("T")
CSS = (Path(__file__).parent / "static" / "lantern.css").read_text(encoding="utf-8")
NOT_FOUND_HINT = (
    "<div class='lantern-notice'>The documents you can read do not answer this. "
    "Try other words, or another collection.</div>"
)


def principal(c: Container, request: gr.Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE) if request else None
    if not token:
        raise gr.Error("Your session has ended: sign in again.")
    try:
        return c.auth.from_session(token)
    except LanternError as e:
        raise gr.Error(str(e)) from None


def admin(c: Container, request: gr.Request) -> Principal:
    who = principal(c, request)
    if not who.is_admin:
        raise gr.Error("This needs an admin.")
    return who


def _shown(events: Iterator[T]) -> Iterator[T]:
    """``events``, with a refusal from the services (bad input, a missing chat) shown
    to the user as the services word it."""
    try:
        yield from events
    except LanternError as e:
        raise gr.Error(str(e)) from None


def _passage(text: str, quote: str, width: int = 280) -> str:
    """The quote highlighted in its passage (HTML)."""
    i = text.find(quote)
    if i < 0:
        return f"<mark>{html.escape(quote)}</mark>"
    start, end = max(0, i - width), min(len(text), i + len(quote) + width)
    return (
        ("…" if start else "")
        + html.escape(text[start:i])
        + f"<mark>{html.escape(quote)}</mark>"
        + html.escape(text[i + len(quote) : end])
        + ("…" if end < len(text) else "")
    )


def citations_html(c: Container, citations: list[dict[str, Any]]) -> str:
    if not citations:
        return ""
    texts = c.search.chunk_texts([x["chunk_id"] for x in citations])
    parts = []
    for x in citations:
        page = x.get("page")
        link = f"/api/v1/documents/{x['document_id']}/file" + (f"#page={page}" if page else "")
        where = html.escape(x["title"]) + (f", page {page}" if page else "")
        parts.append(
            f"<div class='lantern-cite'><div class='where'>[{x['n']}] "
            f"<a href='{link}' target='_blank' rel='noopener'>{where}</a></div>"
            f"<div class='passage'>{_passage(texts.get(x['chunk_id'], ''), x['quote'])}</div></div>"
        )
    return "<h4>Sources</h4>" + "".join(parts)


def build_ui(c: Container) -> gr.Blocks:
    with gr.Blocks(title="Lantern", analytics_enabled=False) as ui:
        chat_id = gr.State(None)
        message_ids = gr.State([])
        with gr.Row():
            header = gr.Markdown("Lantern", elem_id="lantern-header")
            gr.Button("Sign out", link="/logout", size="sm", scale=0, elem_id="logout")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row():
                with gr.Column(scale=1, min_width=220):
                    collections = gr.CheckboxGroup(
                        label="Collections", elem_id="collections", info="None ticked: all"
                    )
                    new_chat = gr.Button("New chat", elem_id="new-chat")
                    sessions = gr.Radio(label="Chats", elem_id="sessions")
                    title = gr.Textbox(label="Rename chat", elem_id="chat-title")
                    with gr.Row():
                        rename = gr.Button("Rename", size="sm", elem_id="rename-chat")
                        delete = gr.Button(
                            "Delete", size="sm", variant="stop", elem_id="delete-chat"
                        )
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        height=480, buttons=["copy"], elem_id="chatbot", label="Answers"
                    )
                    with gr.Row():
                        question = gr.Textbox(
                            placeholder="Ask a question about your documents…",
                            show_label=False,
                            scale=5,
                            elem_id="question",
                        )
                        ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                        stop = gr.Button("Stop", scale=1, elem_id="stop")
                    notice = gr.HTML(elem_id="notice")
                    comment = gr.Textbox(
                        label="Comment for your thumbs up/down (optional)", elem_id="comment"
                    )
                    feedback_status = gr.Markdown(elem_id="feedback-status")
                with gr.Column(scale=2, min_width=260):
                    sources = gr.HTML(elem_id="citations")
            with gr.Tab("Admin", id="admin", visible=False, elem_id="admin-tab") as admin_tab:
                fill_admin, admin_outputs = build_admin(c)

        def load(request: gr.Request) -> tuple[Any, ...]:
            who = principal(c, request)
            readable = c.collections.list_collections(c.access.readable(who))
            chats = c.chats.list_sessions(who)
            return (
                f"### Lantern\nSigned in as **{html.escape(who.name)}** ({who.role})",
                gr.update(choices=[(col.name, col.id) for col in readable], value=[]),
                gr.update(choices=[(s.title, s.id) for s in chats], value=None),
                gr.update(visible=who.is_admin),
            )

        ui.load(load, None, [header, collections, sessions, admin_tab]).then(
            fill_admin, None, admin_outputs
        )

        def open_chat(selected: str | None, request: gr.Request) -> tuple[Any, ...]:
            who = principal(c, request)
            if not selected:
                return None, [], [], "", gr.update(), ""
            chat = c.chats.get(who, selected)
            history, ids, last_cites = [], [], []
            for m in c.chats.messages(who, selected):
                history.append({"role": m.role, "content": m.content})
                ids.append(m.id if m.role == "assistant" else None)
                if m.role == "assistant":
                    last_cites = m.citations
            return (
                selected,
                history,
                ids,
                citations_html(c, last_cites),
                gr.update(value=list(chat.collection_ids)),
                chat.title,
            )

        sessions.input(
            open_chat, [sessions], [chat_id, chatbot, message_ids, sources, collections, title]
        )

        def start_new(request: gr.Request) -> tuple[Any, ...]:
            principal(c, request)
            return None, [], [], "", "", gr.update(value=None)

        new_chat.click(start_new, None, [chat_id, chatbot, message_ids, sources, notice, sessions])

        def refresh_sessions(who: Principal, selected: str | None) -> Any:
            chats = c.chats.list_sessions(who)
            return gr.update(choices=[(s.title, s.id) for s in chats], value=selected)

        def do_rename(selected: str | None, new_title: str, request: gr.Request) -> Any:
            who = principal(c, request)
            if not selected:
                raise gr.Error("Open a chat first.")
            try:
                c.chats.update(who, selected, title=new_title)
            except LanternError as e:
                raise gr.Error(str(e)) from None
            return refresh_sessions(who, selected)

        rename.click(do_rename, [chat_id, title], [sessions])

        def do_delete(selected: str | None, request: gr.Request) -> tuple[Any, ...]:
            who = principal(c, request)
            if selected:
                c.chats.delete(who, selected)
            return None, [], [], "", refresh_sessions(who, None)

        delete.click(do_delete, [chat_id], [chat_id, chatbot, message_ids, sources, sessions])

        def answer(
            q: str,
            selected: str | None,
            cols: list[str],
            history: list[dict[str, Any]],
            ids: list[str | None],
            request: gr.Request,
        ) -> Iterator[tuple[Any, ...]]:
            who = principal(c, request)
            q = (q or "").strip()
            if not q:
                raise gr.Error("Type a question first.")
            try:
                if not selected:
                    selected = c.chats.create(who, collection_ids=cols).id
                else:
                    c.chats.update(who, selected, collection_ids=cols)
                c.rate_limiter.hit(who, 5)
            except LanternError as e:
                raise gr.Error(str(e)) from None
            history = [
                *history,
                {"role": "user", "content": q},
                {"role": "assistant", "content": ""},
            ]
            ids = [*ids, None, None]
            yield "", selected, history, ids, "", "", gr.update()
            for event in _shown(c.chats.ask(who, selected, q)):
                if event.delta:
                    history[-1]["content"] += event.delta
                    yield "", selected, history, ids, gr.update(), gr.update(), gr.update()
                elif event.message is not None and event.answer is not None:
                    history[-1]["content"] = event.message.content
                    ids[-1] = event.message.id
                    extra = ""
                    if event.answer.abstained:
                        extra = NOT_FOUND_HINT
                    elif event.answer.notice:
                        extra = (
                            f"<div class='lantern-notice'>{html.escape(event.answer.notice)}</div>"
                        )
                    yield (
                        "",
                        selected,
                        history,
                        ids,
                        citations_html(c, event.message.citations),
                        extra,
                        refresh_sessions(who, selected),
                    )

        asked = ask.click(
            answer,
            [question, chat_id, collections, chatbot, message_ids],
            [question, chat_id, chatbot, message_ids, sources, notice, sessions],
        )
        submitted = question.submit(
            answer,
            [question, chat_id, collections, chatbot, message_ids],
            [question, chat_id, chatbot, message_ids, sources, notice, sessions],
        )
        stop.click(None, None, None, cancels=[asked, submitted])

        def like(
            ids: list[str | None], note: str, data: gr.LikeData, request: gr.Request
        ) -> tuple[str, str]:
            who = principal(c, request)
            index = data.index if isinstance(data.index, int) else data.index[0]
            message_id = ids[index] if 0 <= index < len(ids) else None
            if message_id is None:
                raise gr.Error("Feedback goes on answers.")
            c.chats.feedback(who, message_id, rating=1 if data.liked else -1, comment=note or "")
            c.audit.record(
                "feedback",
                who,
                target_type="message",
                target_id=message_id,
                details={"rating": 1 if data.liked else -1},
            )
            return "Thanks: your feedback was saved.", ""

        chatbot.like(like, [message_ids, comment], [feedback_status, comment])

        def show_sources(
            selected: str | None, ids: list[str | None], data: gr.SelectData, request: gr.Request
        ) -> Any:
            """Clicking an earlier answer shows its own sources."""
            who = principal(c, request)
            index = data.index if isinstance(data.index, int) else data.index[0]
            message_id = ids[index] if 0 <= index < len(ids) else None
            if not selected or message_id is None:
                return gr.update()
            for m in c.chats.messages(who, selected):
                if m.id == message_id:
                    return citations_html(c, m.citations)
            return gr.update()

        chatbot.select(show_sources, [chat_id, message_ids], [sources])
    return cast(gr.Blocks, ui)


def build_admin(c: Container) -> tuple[Any, list[Any]]:
    """The admin console's components and handlers (inside the "Admin" tab)."""
    with gr.Accordion("System status", open=True):
        status = gr.Markdown(elem_id="system-status")

        def refresh(request: gr.Request) -> str:
            return system_status(c, request)

        gr.Button("Refresh status", size="sm").click(refresh, None, status)
    with gr.Accordion("Collections and access", open=True):
        with gr.Row():
            new_name = gr.Textbox(label="New collection", elem_id="new-collection")
            create = gr.Button("Create collection", elem_id="create-collection")
        with gr.Row():
            collection = gr.Dropdown(label="Collection", elem_id="admin-collection")
            group = gr.Dropdown(label="Group", elem_id="grant-group")
            access = gr.Radio(["read", "write", "none"], value="read", label="Access")
            grant = gr.Button("Set access", elem_id="set-access")
        grants = gr.Markdown(elem_id="grants")
    with gr.Accordion("Documents", open=True):
        files = gr.File(
            label="Upload files", file_count="multiple", type="filepath", elem_id="upload"
        )
        upload_btn = gr.Button("Upload to the collection", variant="primary", elem_id="upload-btn")
        upload_result = gr.Markdown(elem_id="upload-result")
        docs = gr.Dataframe(
            headers=["name", "status", "stage", "progress", "ETA s", "error", "id"],
            interactive=False,
            elem_id="documents",
            label="Documents of the collection (refreshes every 2 s)",
        )
        with gr.Row():
            doc_id = gr.Textbox(label="Document id", elem_id="doc-id")
            delete_doc = gr.Button("Delete document", variant="stop")
            reindex_doc = gr.Button("Reindex document")
    with gr.Accordion("Users, groups and API keys", open=False):
        with gr.Row():
            email = gr.Textbox(label="E-mail", elem_id="new-user-email")
            uname = gr.Textbox(label="Name", elem_id="new-user-name")
            password = gr.Textbox(label="Password", type="password", elem_id="new-user-password")
            role = gr.Radio(list(Role.ALL), value=Role.MEMBER, label="Role")
            create_user = gr.Button("Create user", elem_id="create-user")
        with gr.Row():
            group_name = gr.Textbox(label="New group", elem_id="new-group")
            create_group = gr.Button("Create group", elem_id="create-group")
            member_group = gr.Dropdown(label="Group", elem_id="member-group")
            member_user = gr.Dropdown(label="User", elem_id="member-user")
            add_member = gr.Button("Add to group", elem_id="add-member")
        people = gr.Markdown(elem_id="people")
        with gr.Row():
            key_name = gr.Textbox(label="API key name")
            create_key = gr.Button("Create API key for me")
            revoke_id = gr.Textbox(label="Key id to revoke")
            revoke = gr.Button("Revoke key", variant="stop")
        key_out = gr.Markdown()
    with gr.Accordion("Audit log", open=False):
        with gr.Row():
            action = gr.Textbox(
                label="Action (e.g. login, document.upload)", elem_id="audit-action"
            )
            outcome = gr.Dropdown(
                ["", "ok", "denied", "throttled", "failed"], value="", label="Outcome"
            )
            show_audit = gr.Button("Show", elem_id="show-audit")
        audit = gr.Dataframe(
            headers=["at", "actor", "via", "action", "target", "outcome", "details"],
            interactive=False,
            elem_id="audit",
        )

    def options(request: gr.Request) -> tuple[Any, ...]:
        admin(c, request)
        cols = [(x.name, x.id) for x in c.collections.list_collections()]
        groups = [(g.name, g.id) for g, _ in c.access.list_groups()]
        users = [(u.email, u.id) for u in c.auth.list_users()]
        return (
            gr.update(choices=cols),
            gr.update(choices=groups),
            gr.update(choices=groups),
            gr.update(choices=users),
            people_md(),
            system_status(c, request),
        )

    def people_md() -> str:
        emails = {u.id: u.email for u in c.auth.list_users()}
        lines = []
        for g, members in c.access.list_groups():
            names = ", ".join(emails.get(m, m) for m in members) or "(empty)"
            lines.append(f"- **{html.escape(g.name)}**: {html.escape(names)}")
        return "**Groups**\n\n" + ("\n".join(lines) or "(none)")

    option_outputs = [collection, group, member_group, member_user, people, status]

    def do_create(name: str, request: gr.Request) -> tuple[Any, ...]:
        who = admin(c, request)
        try:
            col = c.collections.create(name)
        except LanternError as e:
            raise gr.Error(str(e)) from None
        c.audit.record("collection.create", who, target_type="collection", target_id=col.id)
        cols = [(x.name, x.id) for x in c.collections.list_collections()]
        return gr.update(choices=cols, value=col.id), ""

    create.click(do_create, [new_name], [collection, new_name])

    def show_grants(cid: str | None, request: gr.Request) -> str:
        admin(c, request)
        if not cid:
            return ""
        rows = c.access.grants(cid)
        return "**Access**: " + (
            ", ".join(f"{html.escape(g.group_name)} ({g.access})" for g in rows) or "admins only"
        )

    def do_grant(cid: str | None, gid: str | None, level: str, request: gr.Request) -> str:
        who = admin(c, request)
        if not cid or not gid:
            raise gr.Error("Pick a collection and a group.")
        current = {g.group_id: g.access for g in c.access.grants(cid)}
        if level == "none":
            current.pop(gid, None)
        else:
            current[gid] = level if level in Access.ALL else Access.READ
        c.access.set_grants(cid, current)
        c.audit.record(
            "collection.access",
            who,
            target_type="collection",
            target_id=cid,
            details={"grants": current},
        )
        return show_grants(cid, request)

    grant.click(do_grant, [collection, group, access], [grants])

    def doc_rows(cid: str | None, request: gr.Request) -> list[list[Any]]:
        admin(c, request)
        if not cid:
            return []
        from app.api.routes.collections import document_out

        listed = c.documents.list_documents(collection_id=cid)
        jobs = c.documents.latest_jobs([d.id for d in listed])
        rows = []
        for d in listed:
            out = document_out(d, jobs.get(d.id))
            rows.append(
                [
                    out.name,
                    out.status,
                    out.stage or "",
                    f"{out.progress:.0%}",
                    out.eta_s if out.eta_s is not None else "",
                    out.error or "",
                    out.id,
                ]
            )
        return rows

    collection.change(show_grants, [collection], [grants]).then(doc_rows, [collection], [docs])
    gr.Timer(2.0).tick(doc_rows, [collection], [docs])

    def do_upload(cid: str | None, paths: list[str] | None, request: gr.Request) -> tuple[Any, ...]:
        who = admin(c, request)
        if not cid:
            raise gr.Error("Pick a collection first.")
        if not paths:
            raise gr.Error("Choose files to upload.")
        lines = []
        for p in paths:
            name = Path(p).name
            try:
                result = c.documents.add_file(
                    collection_id=cid, name=name, path=Path(p), uploader=who.email
                )
            except LanternError as e:
                raise gr.Error(str(e)) from None
            c.audit.record(
                "document.upload",
                who,
                target_type="document",
                target_id=result.document_id,
                details={"collection_id": cid, "name": name, "outcome": result.outcome},
            )
            lines.append(
                f"- {html.escape(name)}: {result.outcome}"
                + (f" ({html.escape(result.reason)})" if result.reason else "")
            )
        c.wake_workers()
        return "\n".join(lines), None, doc_rows(cid, request)

    upload_btn.click(do_upload, [collection, files], [upload_result, files, docs])

    def do_delete_doc(cid: str | None, did: str, request: gr.Request) -> list[list[Any]]:
        who = admin(c, request)
        try:
            c.documents.delete(did.strip(), vectors=c.vectors, lexical=c.lexical)
        except LanternError as e:
            raise gr.Error(str(e)) from None
        c.audit.record("document.delete", who, target_type="document", target_id=did.strip())
        return doc_rows(cid, request)

    delete_doc.click(do_delete_doc, [collection, doc_id], [docs])

    def do_reindex(cid: str | None, did: str, request: gr.Request) -> list[list[Any]]:
        who = admin(c, request)
        try:
            c.documents.reprocess(did.strip(), uploader=who.email)
        except LanternError as e:
            raise gr.Error(str(e)) from None
        c.wake_workers()
        return doc_rows(cid, request)

    reindex_doc.click(do_reindex, [collection, doc_id], [docs])

    def do_create_user(
        mail: str, name: str, pw: str, r: str, request: gr.Request
    ) -> tuple[Any, ...]:
        who = admin(c, request)
        try:
            user = c.auth.create_user(mail, name=name, password=pw or None, role=r)
        except LanternError as e:
            raise gr.Error(str(e)) from None
        c.audit.record("user.create", who, target_type="user", target_id=user.id)
        users = [(u.email, u.id) for u in c.auth.list_users()]
        return gr.update(choices=users), "", "", ""

    create_user.click(
        do_create_user, [email, uname, password, role], [member_user, email, uname, password]
    )

    def do_create_group(name: str, request: gr.Request) -> tuple[Any, ...]:
        who = admin(c, request)
        try:
            g = c.access.create_group(name)
        except LanternError as e:
            raise gr.Error(str(e)) from None
        c.audit.record("group.create", who, target_type="group", target_id=g.id)
        groups = [(x.name, x.id) for x, _ in c.access.list_groups()]
        return gr.update(choices=groups), gr.update(choices=groups), "", people_md()

    create_group.click(do_create_group, [group_name], [group, member_group, group_name, people])

    def do_add_member(gid: str | None, uid: str | None, request: gr.Request) -> str:
        who = admin(c, request)
        if not gid or not uid:
            raise gr.Error("Pick a group and a user.")
        c.access.add_member(gid, uid)
        c.audit.record("group.members", who, target_type="group", target_id=gid)
        return people_md()

    add_member.click(do_add_member, [member_group, member_user], [people])

    def do_create_key(name: str, request: gr.Request) -> str:
        who = admin(c, request)
        try:
            new = c.auth.create_api_key(who.user_id, name or "key")
        except LanternError as e:
            raise gr.Error(str(e)) from None
        c.audit.record("api_key.create", who, target_type="api_key", target_id=new.id)
        return f"New key **{html.escape(new.name)}** (id `{new.id}`), shown once:\n\n`{new.key}`"

    create_key.click(do_create_key, [key_name], [key_out])

    def do_revoke(key_id: str, request: gr.Request) -> str:
        who = admin(c, request)
        try:
            c.auth.revoke_api_key(key_id.strip())
        except LanternError as e:
            raise gr.Error(str(e)) from None
        c.audit.record("api_key.revoke", who, target_type="api_key", target_id=key_id.strip())
        return f"Key `{html.escape(key_id.strip())}` revoked."

    revoke.click(do_revoke, [revoke_id], [key_out])

    def do_audit(act: str, out: str, request: gr.Request) -> list[list[Any]]:
        admin(c, request)
        emails = {u.id: u.email for u in c.auth.list_users()}
        try:
            events = c.audit.query(
                AuditQuery(action=act.strip() or None, outcome=out or None, limit=200)
            )
        except LanternError as e:
            raise gr.Error(str(e)) from None
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

    show_audit.click(do_audit, [action, outcome], [audit])

    def fill(request: gr.Request) -> tuple[Any, ...]:
        """The console's choices on page load; nothing at all for members."""
        if not principal(c, request).is_admin:
            return tuple(gr.update() for _ in option_outputs)
        return options(request)

    return fill, option_outputs


def system_status(c: Container, request: gr.Request) -> str:
    admin(c, request)
    e = c.embedder
    counts = c.documents.job_counts()
    sizes = c.index_sizes()
    lines = [
        f"- **Embedding model**: `{e.model_name}`"
        + (
            " ⚠️ **fallback model active**: retrieval is noticeably worse; install "
            f"`{c.settings.embedding.model}` and run `lantern reindex`"
            if e.is_fallback
            else ""
        ),
        f"- **Chat backend**: {c.chat_kind}",
        f"- **Index**: {sizes['vectors']} vectors, {sizes['lexical']} BM25 entries",
        f"- **Queue**: {counts.get(JobStatus.QUEUED, 0)} queued, "
        f"{counts.get(JobStatus.RUNNING, 0)} running, {counts.get(JobStatus.FAILED, 0)} failed",
        f"- **Checked**: {time.strftime('%H:%M:%S')}",
    ]
    return "\n".join(lines)
