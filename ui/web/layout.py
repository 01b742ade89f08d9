"""The Gradio Blocks: components laid out and wired to the handler classes."""

from __future__ import annotations

from typing import Any, cast

import gradio as gr

from app.db.identity import Role
from ui.web.admin import AdminUI
from ui.web.chat import ChatUI
from ui.web.models import HEADERS, ModelsUI


def build_ui(chat: ChatUI, admin: AdminUI) -> gr.Blocks:
    """The whole app: the chat tab, and the admin tab (shown to admins only)."""
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
                        label="Comment for your thumbs up/down (optional)",
                        info='Wrong answer? Write "Correction: " and the right answer, citing '
                        "the sources as [1], then give it a thumbs down: corrections train the "
                        "next model version.",
                        placeholder="Correction: New employees get 25 vacation days [1].",
                        elem_id="comment",
                    )
                    feedback_status = gr.Markdown(elem_id="feedback-status")
                with gr.Column(scale=2, min_width=260):
                    sources = gr.HTML(elem_id="citations")
            with gr.Tab("Admin", id="admin", visible=False, elem_id="admin-tab") as admin_tab:
                admin_outputs, models_outputs = _admin_console(admin)

        ui.load(chat.load, None, [header, collections, sessions, admin_tab]).then(
            admin.fill, None, admin_outputs
        ).then(admin.models.fill, None, models_outputs)
        sessions.input(
            chat.open_chat,
            [sessions],
            [chat_id, chatbot, message_ids, sources, collections, title],
        )
        new_chat.click(
            chat.start_new, None, [chat_id, chatbot, message_ids, sources, notice, sessions]
        )
        rename.click(chat.rename, [chat_id, title], [sessions])
        delete.click(chat.delete, [chat_id], [chat_id, chatbot, message_ids, sources, sessions])
        asking = [question, chat_id, collections, chatbot, message_ids]
        answered = [question, chat_id, chatbot, message_ids, sources, notice, sessions]
        asked = ask.click(chat.answer, asking, answered)
        submitted = question.submit(chat.answer, asking, answered)
        stop.click(None, None, None, cancels=[asked, submitted])
        chatbot.like(chat.like, [message_ids, comment], [feedback_status, comment])
        chatbot.select(chat.show_sources, [chat_id, message_ids], [sources])
    return cast(gr.Blocks, ui)


def _admin_console(admin: AdminUI) -> tuple[list[Any], list[Any]]:
    """The admin tab's components, wired; returns what ``admin.fill`` and
    ``admin.models.fill`` fill on load."""
    with gr.Accordion("System status", open=True):
        status = gr.Markdown(elem_id="system-status")
        gr.Button("Refresh status", size="sm").click(admin.status.system_status, None, status)
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
        upload = gr.Button("Upload to the collection", variant="primary", elem_id="upload-btn")
        upload_result = gr.Markdown(elem_id="upload-result")
        docs = gr.Dataframe(
            headers=["name", "status", "stage", "progress", "ETA s", "error", "attached to", "id"],
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
    with gr.Accordion("Model versions", open=False, elem_id="model-versions"):
        models_outputs = _models_section(admin.models)
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

    create.click(admin.create_collection, [new_name], [collection, new_name])
    grant.click(admin.set_access, [collection, group, access], [grants])
    collection.change(admin.grants, [collection], [grants]).then(
        admin.documents_table, [collection], [docs]
    )
    gr.Timer(2.0).tick(admin.documents_table, [collection], [docs])
    upload.click(admin.upload, [collection, files], [upload_result, files, docs])
    delete_doc.click(admin.delete_document, [collection, doc_id], [docs])
    reindex_doc.click(admin.reindex, [collection, doc_id], [docs])
    create_user.click(
        admin.create_user, [email, uname, password, role], [member_user, email, uname, password]
    )
    create_group.click(admin.create_group, [group_name], [group, member_group, group_name, people])
    add_member.click(admin.add_member, [member_group, member_user], [people])
    create_key.click(admin.create_key, [key_name], [key_out])
    revoke.click(admin.revoke_key, [revoke_id], [key_out])
    show_audit.click(admin.audit_log, [action, outcome], [audit])
    return [collection, group, member_group, member_user, people, status], models_outputs


def _models_section(models: ModelsUI) -> list[Any]:
    """The model versions' table, picker and buttons, wired; returns what
    ``models.fill`` fills (the table and both pickers)."""
    table = gr.Dataframe(
        headers=HEADERS,
        interactive=False,
        wrap=True,
        elem_id="model-table",
        label="Model versions (click a row to pick it)",
    )
    with gr.Row():
        picker = gr.Dropdown(label="Version", elem_id="model-picker", scale=2)
        refresh = gr.Button("Refresh", size="sm", scale=0, elem_id="model-refresh")
    with gr.Row():
        force = gr.Checkbox(
            label="Force past a failed gate (audited)", value=False, elem_id="model-force"
        )
        promote = gr.Button("Promote", variant="primary", elem_id="model-promote")
        rollback = gr.Button("Roll back", elem_id="model-rollback")
        retire = gr.Button("Retire", variant="stop", elem_id="model-retire")
    with gr.Row():
        share = gr.Number(
            label="A/B share (fraction of users, 0 to 1; 0 ends the test)",
            minimum=0,
            maximum=1,
            step=0.05,
            elem_id="model-share",
        )
        set_share = gr.Button("Set share", elem_id="model-set-share")
    message = gr.Markdown(elem_id="model-status")
    with gr.Row():
        other = gr.Dropdown(label="Compare the version with", elem_id="model-compare-with")
        compare = gr.Button("Compare", elem_id="model-compare")
    comparison = gr.Markdown(elem_id="model-comparison")

    filled = [table, picker, other]
    changed = [message, *filled]
    refresh.click(models.refresh, [picker], filled)
    table.select(models.pick, None, [picker])
    picker.change(models.share_of, [picker], [share])
    promote.click(models.promote, [picker, force], [*changed, force])
    rollback.click(models.rollback, [picker], changed)
    retire.click(models.retire, [picker], changed)
    set_share.click(models.set_share, [picker, share], changed)
    compare.click(models.compare, [picker, other], [comparison])
    return filled
