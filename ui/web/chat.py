"""The employee chat: sessions, streamed answers with sources, and feedback."""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import gradio as gr

from app.services.actor import Actor
from app.services.chat import ChatService
from app.services.finetune_data import parse_correction
from app.services.identity import IdentityService
from app.services.library import LibraryService
from app.services.search import SearchService
from ui.web.base import Handlers, refused, row_of, shown
from ui.web.sources import citations_html

NOT_FOUND_HINT = (
    "<div class='lantern-notice'>The documents you can read do not answer this. "
    "Try other words, or another collection.</div>"
)


class ChatUI(Handlers):
    """Handlers of the chat tab; each takes the request whose session says who asks."""

    def __init__(
        self,
        *,
        identity: IdentityService,
        chats: ChatService,
        library: LibraryService,
        search: SearchService,
    ) -> None:
        super().__init__(identity)
        self.chats = chats
        self.library = library
        self.search = search

    def load(self, request: gr.Request) -> tuple[Any, ...]:
        """On page load: header, readable collections, the caller's chats, admin tab shown?"""
        who, actor = self._caller(request)
        readable = [v.collection for v in self.library.list_collections(actor)]
        return (
            f"### Lantern\nSigned in as **{html.escape(who.name)}** ({who.role})",
            gr.update(choices=[(col.name, col.id) for col in readable], value=[]),
            self._sessions(actor, None),
            gr.update(visible=who.is_admin),
        )

    def _sessions(self, actor: Actor, selected: str | None) -> Any:
        chats = self.chats.list_sessions(actor)
        return gr.update(choices=[(s.title, s.id) for s in chats], value=selected)

    def open_chat(self, selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        """A chat's history, its last sources, its collections and title."""
        _, who = self._caller(request)
        if not selected:
            return None, [], [], "", gr.update(), ""
        with refused():
            chat = self.chats.get(who, selected)
            messages = self.chats.messages(who, selected)
        history, ids, last_cites = [], [], []
        for m in messages:
            history.append({"role": m.role, "content": m.content})
            ids.append(m.id if m.role == "assistant" else None)
            if m.role == "assistant":
                last_cites = m.citations
        return (
            selected,
            history,
            ids,
            citations_html(self.search, last_cites),
            gr.update(value=list(chat.collection_ids)),
            chat.title,
        )

    def start_new(self, request: gr.Request) -> tuple[Any, ...]:
        """An empty conversation (the chat is created with its first question)."""
        self._caller(request)
        return None, [], [], "", "", gr.update(value=None)

    def rename(self, selected: str | None, new_title: str, request: gr.Request) -> Any:
        _, who = self._caller(request)
        if not selected:
            raise gr.Error("Open a chat first.")
        with refused():
            self.chats.update(who, selected, title=new_title)
        return self._sessions(who, selected)

    def delete(self, selected: str | None, request: gr.Request) -> tuple[Any, ...]:
        _, who = self._caller(request)
        if selected:
            with refused():
                self.chats.delete(who, selected)
        return None, [], [], "", self._sessions(who, None)

    def answer(
        self,
        q: str,
        selected: str | None,
        cols: list[str],
        history: list[dict[str, Any]],
        ids: list[str | None],
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        """Stream the answer into the chat; the sources and any notice come at the end.

        Yields (question box, chat id, history, message ids, sources, notice, chats)."""
        _, who = self._caller(request)
        q = (q or "").strip()
        if not q:
            raise gr.Error("Type a question first.")
        with refused():
            if not selected:
                selected = self.chats.create(who, collection_ids=cols).id
            else:
                self.chats.update(who, selected, collection_ids=cols)
        history = [*history, {"role": "user", "content": q}, {"role": "assistant", "content": ""}]
        ids = [*ids, None, None]
        yield "", selected, history, ids, "", "", gr.update()
        for event in shown(self.chats.ask(who, selected, q, stream=True)):
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
                    extra = f"<div class='lantern-notice'>{html.escape(event.answer.notice)}</div>"
                yield (
                    "",
                    selected,
                    history,
                    ids,
                    citations_html(self.search, event.message.citations),
                    extra,
                    self._sessions(who, selected),
                )

    def like(
        self, ids: list[str | None], note: str, data: gr.LikeData, request: gr.Request
    ) -> tuple[str, str]:
        """Thumbs up or down on an answer, with the optional comment."""
        _, who = self._caller(request)
        index = row_of(data)
        message_id = ids[index] if 0 <= index < len(ids) else None
        if message_id is None:
            raise gr.Error("Feedback goes on answers.")
        rating = 1 if data.liked else -1
        with refused():
            self.chats.feedback(who, message_id, rating=rating, comment=note or "")
        if rating < 0 and parse_correction(note or ""):
            return "Thanks: your correction was saved for training the next model version.", ""
        return "Thanks: your feedback was saved.", ""

    def show_sources(
        self, selected: str | None, ids: list[str | None], data: gr.SelectData, request: gr.Request
    ) -> Any:
        """Clicking an earlier answer shows its own sources."""
        _, who = self._caller(request)
        index = row_of(data)
        message_id = ids[index] if 0 <= index < len(ids) else None
        if not selected or message_id is None:
            return gr.update()
        with refused():
            messages = self.chats.messages(who, selected)
        for m in messages:
            if m.id == message_id:
                return citations_html(self.search, m.citations)
        return gr.update()
